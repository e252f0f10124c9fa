"""GraphQL queries of the tenants app."""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
import strawberry_django
from strawberry_django.relay import DjangoListConnection

from tenants.graphql.context import Info
from tenants.graphql.operations import query
from tenants.graphql.types import (
    ApiTokenType,
    MembershipType,
    MeType,
    TeamType,
    TenantType,
    WorkspaceType,
)
from tenants.models import ApiToken, Membership, Team
from tenants.principal import PrincipalKind
from tenants.scopes import Role, Scope
from tenants.selectors import user_workspaces


@strawberry.type
class TenantQuery:
    @strawberry.field(description="The caller: user or API token, workspace and scopes.")
    def me(self, info: Info) -> MeType:
        principal = info.context.principal
        user = principal.user
        workspaces = (
            [WorkspaceType(slug=s, name=n, role=Role(r)) for s, n, r in user_workspaces(user=user)]
            if user is not None
            else []
        )
        return MeType(
            auth_kind=principal.kind.value,
            username=user.get_username() if user is not None else None,
            token_name=principal.token.name if principal.kind == PrincipalKind.TOKEN else None,
            is_superuser=bool(user and user.is_superuser),
            tenant=principal.tenant,
            role=None if principal.role is None else Role(principal.role),
            scopes=sorted(principal.scopes),
            workspaces=workspaces,
        )

    @strawberry.field(description="The workspace this request is scoped to.")
    def tenant(self, info: Info) -> TenantType:
        return info.context.require_tenant()  # type: ignore[return-value]

    @strawberry_django.connection(
        DjangoListConnection[TeamType], description="The workspace's teams."
    )
    def teams(self, info: Info) -> Iterable[Team]:
        info.context.require_tenant()
        return Team.objects.all()

    @strawberry_django.connection(
        DjangoListConnection[MembershipType], description="The workspace's members."
    )
    def members(self, info: Info) -> Iterable[Membership]:
        info.context.require_tenant()
        return Membership.objects.select_related("user", "team")

    @query(
        DjangoListConnection[ApiTokenType],
        description="API tokens (admins only); secrets are never shown.",
        scope=Scope.TOKENS_MANAGE,
        field=strawberry_django.connection,
    )
    def api_tokens(self, info: Info) -> Iterable[ApiToken]:
        return ApiToken.objects.all()
