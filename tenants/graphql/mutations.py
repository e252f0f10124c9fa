"""GraphQL mutations of the tenants app: API token management."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry import relay

from tenants import services
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.graphql.errors import MutationError, run_mutation
from tenants.graphql.types import ApiTokenType
from tenants.models import ApiToken
from tenants.scopes import Scope


@strawberry.input
class CreateApiTokenInput:
    name: str
    scopes: list[str] = strawberry.field(description="E.g. records:write, kpis:read.")
    expires_at: dt.datetime | None = strawberry.field(
        default=None, description="Leave empty for a token that does not expire."
    )


@strawberry.type
class CreateApiTokenPayload:
    api_token: ApiTokenType | None = None
    secret: str | None = strawberry.field(
        default=None, description="The token to send as a Bearer secret. Shown only once."
    )
    errors: list[MutationError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeApiTokenPayload:
    api_token: ApiTokenType | None = None
    errors: list[MutationError] = strawberry.field(default_factory=list)


@strawberry.type
class TenantMutation:
    @strawberry.mutation(description="Create an API token for partner tools (admins only).")
    def create_api_token(self, info: Info, input: CreateApiTokenInput) -> CreateApiTokenPayload:
        def build() -> CreateApiTokenPayload:
            tenant = info.context.require_scope(Scope.TOKENS_MANAGE)
            token, secret = services.api_token_create(
                tenant=tenant,
                name=input.name,
                scopes=input.scopes,
                expires_at=input.expires_at,
                created_by=info.context.principal.user,
            )
            return CreateApiTokenPayload(api_token=token, secret=secret)  # type: ignore[arg-type]

        return run_mutation(build, lambda errors: CreateApiTokenPayload(errors=errors))

    @strawberry.mutation(description="Revoke an API token at once (admins only).")
    def revoke_api_token(self, info: Info, id: relay.GlobalID) -> RevokeApiTokenPayload:
        def build() -> RevokeApiTokenPayload:
            tenant = info.context.require_scope(Scope.TOKENS_MANAGE)
            token = resolve_global_id(
                info, id, model=ApiToken, type_name="ApiToken", what="API token", field="id"
            )
            revoked = services.api_token_revoke(tenant=tenant, token_id=token.pk)
            return RevokeApiTokenPayload(api_token=revoked)  # type: ignore[arg-type]

        return run_mutation(build, lambda errors: RevokeApiTokenPayload(errors=errors))
