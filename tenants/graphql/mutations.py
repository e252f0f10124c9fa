"""GraphQL mutations of the tenants app: workspace settings, closures, teams, members and API
tokens."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry import relay

from tenants import members, services
from tenants.graphql.base import resolve_global_id, sent_changes
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.graphql.types import (
    ApiTokenType,
    ClosureType,
    MemberRole,
    MembershipType,
    TeamType,
    TenantType,
)
from tenants.models import (
    API_TOKEN_MAX_REQUESTS_PER_MINUTE,
    API_TOKEN_MAX_ROWS_PER_MINUTE,
    ApiToken,
    Membership,
    Team,
)
from tenants.scopes import Role, Scope

_REQUESTS_LIMIT = (
    f"Requests per minute, 1 to {API_TOKEN_MAX_REQUESTS_PER_MINUTE}; null: the server's default."
)
_ROWS_LIMIT = (
    f"Ingested rows per minute, 1 to {API_TOKEN_MAX_ROWS_PER_MINUTE}; null: the server's default."
)


@strawberry.input
class CreateApiTokenInput:
    name: str
    scopes: list[str] = strawberry.field(description="E.g. records:write, kpis:read.")
    expires_at: dt.datetime | None = strawberry.field(
        default=None, description="Leave empty for a token that does not expire."
    )
    requests_per_minute: int | None = strawberry.field(default=None, description=_REQUESTS_LIMIT)
    rows_per_minute: int | None = strawberry.field(default=None, description=_ROWS_LIMIT)


@strawberry.input(description="Only the fields sent are changed; send a limit null to clear it.")
class UpdateApiTokenInput:
    id: relay.GlobalID
    name: str | None = strawberry.UNSET
    requests_per_minute: int | None = strawberry.field(
        default=strawberry.UNSET, description=_REQUESTS_LIMIT
    )
    rows_per_minute: int | None = strawberry.field(
        default=strawberry.UNSET, description=_ROWS_LIMIT
    )


@strawberry.type
class UpdateApiTokenPayload(MutationPayload):
    api_token: ApiTokenType | None = None


@strawberry.type
class CreateApiTokenPayload(MutationPayload):
    api_token: ApiTokenType | None = None
    secret: str | None = strawberry.field(
        default=None, description="The token to send as a Bearer secret. Shown only once."
    )


@strawberry.type
class RevokeApiTokenPayload(MutationPayload):
    api_token: ApiTokenType | None = None


@strawberry.input(description="Only the fields sent are changed.")
class UpdateTenantInput:
    name: str | None = strawberry.UNSET
    timezone: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "An IANA time zone, e.g. Asia/Tokyo. Periods are local days: a change rebuilds "
            "every KPI snapshot of the workspace (seconds for a large one)."
        ),
    )
    currency: str | None = strawberry.field(
        default=strawberry.UNSET, description="ISO 4217, e.g. JPY."
    )
    fiscal_year_start_month: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="1 to 12; fiscal quarters and years follow it (a change rebuilds snapshots).",
    )
    holiday_country: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The public-holiday calendar of working days, e.g. JP, US, GB.",
    )
    language: str | None = strawberry.field(default=strawberry.UNSET, description="ja or en.")
    business_opens: dt.time | None = strawberry.field(
        default=strawberry.UNSET,
        description="Local time business hours start on working days (handoff SLAs, silence).",
    )
    business_closes: dt.time | None = strawberry.field(
        default=strawberry.UNSET, description="Local time business hours end; after the opening."
    )


_TENANT_SETTINGS = (
    "name", "timezone", "currency", "fiscal_year_start_month", "holiday_country", "language",
    "business_opens", "business_closes",
)  # fmt: skip


@strawberry.type
class TenantPayload(MutationPayload):
    tenant: TenantType | None = None


@strawberry.input
class AddClosureInput:
    date: dt.date
    name: str = ""


@strawberry.type
class ClosurePayload(MutationPayload):
    closure: ClosureType | None = None


@strawberry.type
class RemoveClosurePayload(MutationPayload):
    removed_date: dt.date | None = None


@strawberry.input
class CreateTeamInput:
    name: str


@strawberry.input
class UpdateTeamInput:
    id: relay.GlobalID
    name: str


@strawberry.type
class TeamPayload(MutationPayload):
    team: TeamType | None = None


@strawberry.type
class DeleteTeamPayload(MutationPayload):
    deleted_id: relay.GlobalID | None = None


@strawberry.input
class AddMemberInput:
    email: str = strawberry.field(
        description="Partner records refer to the member by this e-mail (repEmail, ownerEmail)."
    )
    role: MemberRole = Role.REP  # type: ignore[valid-type]
    team_id: relay.GlobalID | None = None
    display_name: str = ""
    username: str | None = strawberry.field(
        default=None,
        description=(
            "An existing user's username (needed when several people share the e-mail), or "
            "the new user's; the e-mail, lower-cased, if empty."
        ),
    )


@strawberry.input(description="Only the fields sent are changed; send teamId null to clear it.")
class UpdateMemberInput:
    id: relay.GlobalID
    role: MemberRole | None = strawberry.UNSET  # type: ignore[valid-type]
    team_id: relay.GlobalID | None = strawberry.UNSET
    team_effective_from: str | None = strawberry.field(
        default=None,
        description=(
            "With teamId: the workspace-local day (YYYY-MM-DD) the move takes effect, today "
            "by default; it may be in the past (up to the member's next recorded move), never "
            "in the future. KPIs of those days count for the new team."
        ),
    )
    display_name: str | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET


@strawberry.type
class MemberPayload(MutationPayload):
    member: MembershipType | None = None


def _team(info: Info, global_id: relay.GlobalID, field: str) -> Team:
    return resolve_global_id(info, global_id, model=Team, type_name="Team", field=field)


def _require_admin_for(info: Info, *roles: str | None) -> None:
    """Granting, changing or removing the admin role takes an admin's own permission
    (tokens:manage, which only admins hold): config:write alone manages everyone else."""
    if Role.ADMIN in roles:
        info.context.require_scope(Scope.TOKENS_MANAGE)


@strawberry.type
class TenantMutation:
    @mutation(
        scope=Scope.TOKENS_MANAGE,
        description="Create an API token for partner tools (admins only).",
    )
    def create_api_token(self, info: Info, input: CreateApiTokenInput) -> CreateApiTokenPayload:
        tenant = info.context.require_tenant()
        token, secret = services.api_token_create(
            tenant=tenant,
            name=input.name,
            scopes=input.scopes,
            expires_at=input.expires_at,
            created_by=info.context.principal.user,
            requests_per_minute=input.requests_per_minute,
            rows_per_minute=input.rows_per_minute,
        )
        return CreateApiTokenPayload(api_token=token, secret=secret)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.TOKENS_MANAGE,
        description=(
            "Rename an API token or change its rate limits (admins only); limits apply from "
            "its next request."
        ),
    )
    def update_api_token(self, info: Info, input: UpdateApiTokenInput) -> UpdateApiTokenPayload:
        tenant = info.context.require_tenant()
        token = resolve_global_id(
            info, input.id, model=ApiToken, type_name="ApiToken", what="API token", field="id"
        )
        changes = sent_changes(
            input,
            ("name", "requests_per_minute", "rows_per_minute"),
            nullable=("requests_per_minute", "rows_per_minute"),
        )
        updated = services.api_token_update(tenant=tenant, token_id=token.pk, **changes)
        return UpdateApiTokenPayload(api_token=updated)  # type: ignore[arg-type]

    @mutation(scope=Scope.TOKENS_MANAGE, description="Revoke an API token at once (admins only).")
    def revoke_api_token(self, info: Info, id: relay.GlobalID) -> RevokeApiTokenPayload:
        tenant = info.context.require_tenant()
        token = resolve_global_id(
            info, id, model=ApiToken, type_name="ApiToken", what="API token", field="id"
        )
        revoked = services.api_token_revoke(tenant=tenant, token_id=token.pk)
        return RevokeApiTokenPayload(api_token=revoked)  # type: ignore[arg-type]

    @mutation(scope=Scope.CONFIG_WRITE, description="Create a team (needs config:write).")
    def create_team(self, info: Info, input: CreateTeamInput) -> TeamPayload:
        tenant = info.context.require_tenant()
        return TeamPayload(team=members.team_create(tenant=tenant, name=input.name))  # type: ignore[arg-type]

    @mutation(scope=Scope.CONFIG_WRITE, description="Rename a team (needs config:write).")
    def update_team(self, info: Info, input: UpdateTeamInput) -> TeamPayload:
        team = members.team_rename(team=_team(info, input.id, "id"), name=input.name)
        return TeamPayload(team=team)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description=(
            "Delete a team (needs config:write): its members and leads are left without one, "
            "the days its members were in it count for no team (their teamHistory keeps the "
            "spans, with team null) and only those days' KPI snapshots are recomputed."
        ),
    )
    def delete_team(self, info: Info, id: relay.GlobalID) -> DeleteTeamPayload:
        members.team_delete(team=_team(info, id, "id"))
        return DeleteTeamPayload(deleted_id=id)

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description=(
            "Add a person to the workspace by e-mail (needs config:write; the admin role needs "
            "an admin). A new user has no password until one is set."
        ),
    )
    def add_member(self, info: Info, input: AddMemberInput) -> MemberPayload:
        tenant = info.context.require_tenant()
        _require_admin_for(info, input.role)
        member = members.member_add(
            tenant=tenant,
            email=input.email,
            role=input.role,
            team=None if input.team_id is None else _team(info, input.team_id, "teamId"),
            display_name=input.display_name,
            username=input.username,
        )
        return MemberPayload(member=member)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description=(
            "Change a member's role, team, display name or active flag (needs config:write; "
            "an admin's, or making one, needs an admin). A team move counts from "
            "teamEffectiveFrom (today by default): the KPIs of the days it covers are "
            "recomputed."
        ),
    )
    def update_member(self, info: Info, input: UpdateMemberInput) -> MemberPayload:
        member = resolve_global_id(
            info, input.id, model=Membership, type_name="Membership", what="Member", field="id"
        )
        changes = sent_changes(
            input,
            ("role", "team_id", "display_name", "is_active"),
            nullable=("team_id", "display_name"),
        )
        if "team_id" in changes:
            team_id = changes.pop("team_id")
            changes["team"] = None if team_id is None else _team(info, team_id, "teamId")
        if "display_name" in changes:
            changes["display_name"] = changes["display_name"] or ""
        _require_admin_for(info, member.role, changes.get("role"))
        updated = members.member_update(
            membership=member, team_effective_from=input.team_effective_from, **changes
        )
        return MemberPayload(member=updated)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description=(
            "Change the workspace's settings (needs config:write). A new time zone or "
            "fiscal-year start rebuilds its KPI snapshots."
        ),
    )
    def update_tenant(self, info: Info, input: UpdateTenantInput) -> TenantPayload:
        tenant = info.context.require_tenant()
        changes = sent_changes(input, _TENANT_SETTINGS)
        updated = services.tenant_update(tenant=tenant, **changes)
        return TenantPayload(tenant=updated)  # type: ignore[arg-type]

    @mutation(
        scope=Scope.CONFIG_WRITE,
        description="Close the workspace on a day besides public holidays (needs config:write).",
    )
    def add_closure(self, info: Info, input: AddClosureInput) -> ClosurePayload:
        tenant = info.context.require_tenant()
        closure = services.closure_add(tenant=tenant, day=input.date, name=input.name)
        return ClosurePayload(closure=closure)  # type: ignore[arg-type]

    @mutation(scope=Scope.CONFIG_WRITE, description="Open a closed day again (needs config:write).")
    def remove_closure(self, info: Info, date: dt.date) -> RemoveClosurePayload:
        tenant = info.context.require_tenant()
        services.closure_remove(tenant=tenant, day=date)
        return RemoveClosurePayload(removed_date=date)
