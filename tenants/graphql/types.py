"""GraphQL types of the tenants app."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import strawberry
import strawberry_django
from django.db.models import Model, QuerySet
from strawberry import auto, relay

from tenants import models, rate_limits
from tenants.graphql.base import TenantScoped
from tenants.graphql.context import Info
from tenants.scopes import Role

M = TypeVar("M", bound=Model)

MemberRole = strawberry.enum(Role, name="MemberRole", description="A member's role.")


@strawberry_django.type(models.Tenant, name="Tenant")
class TenantType:
    """The workspace the request is scoped to."""

    slug: auto
    name: auto
    timezone: auto
    currency: auto
    fiscal_year_start_month: auto
    holiday_country: auto
    language: str
    business_opens: auto
    business_closes: auto

    @strawberry_django.field(description="Days off besides public holidays.")
    def closures(self, info: Info) -> list[ClosureType]:
        return list(models.TenantClosure.objects.filter(tenant_id=self.pk).order_by("date"))


@strawberry_django.type(models.TenantClosure, name="Closure")
class ClosureType(TenantScoped):
    date: auto
    name: auto


@strawberry_django.type(models.Team, name="Team")
class TeamType(TenantScoped, relay.Node):
    name: auto
    created_at: auto


@strawberry_django.type(
    models.MemberTeamSpan,
    name="TeamSpan",
    description=(
        "The team a member was in over the workspace-local days [validFrom, validUntil); "
        "team-scoped KPIs count each fact for its rep's team on the fact's day."
    ),
)
class TeamSpanType(TenantScoped):
    team: TeamType | None = strawberry_django.field(
        description="The team; null: in no team over these days (or the team was deleted)."
    )

    @classmethod
    def get_queryset(cls, queryset: QuerySet[M], info: Info, **kwargs: Any) -> QuerySet[M]:
        return super().get_queryset(queryset, info, **kwargs).order_by("member_id", "valid_from")

    @strawberry_django.field(
        only=["valid_from"],
        description=(
            "The first day in this team; null for the member's first span, which holds "
            "since always (every day before the member's first recorded move)."
        ),
    )
    def valid_from(self) -> dt.date | None:
        # NOTE: stored as SINCE_ALWAYS (0001-01-01), a sentinel, not a day anyone chose.
        return None if self.valid_from <= models.SINCE_ALWAYS else self.valid_from

    @strawberry_django.field(
        only=["valid_until"],
        description="The first day in the member's next team; null: still in this one.",
    )
    def valid_until(self) -> dt.date | None:
        return self.valid_until


@strawberry_django.type(models.Membership, name="Membership")
class MembershipType(TenantScoped, relay.Node):
    role: MemberRole  # type: ignore[valid-type]
    display_name: auto
    is_active: auto
    team: TeamType | None
    team_history: list[TeamSpanType] = strawberry_django.field(
        field_name="team_spans",
        description=(
            "The member's team history, oldest first: contiguous spans, the last one open "
            "(validUntil null) and holding the current team."
        ),
    )

    @strawberry_django.field(only=["user__username"], select_related=["user"])
    def username(self) -> str:
        return self.user.username

    @strawberry_django.field(
        only=["user__email"],
        select_related=["user"],
        description="The e-mail partner records refer to the member by (repEmail, ownerEmail).",
    )
    def email(self) -> str:
        return self.user.email


@strawberry_django.type(models.ApiToken, name="ApiToken")
class ApiTokenType(TenantScoped, relay.Node):
    """An API token's public metadata; its secret is shown only when it is created."""

    name: auto
    scopes: list[str]
    created_by_label: auto
    created_at: auto
    expires_at: auto
    last_used_at: auto
    revoked_at: auto
    requests_per_minute: int | None = strawberry_django.field(
        description="The token's own requests-per-minute limit; null: the server's default."
    )
    rows_per_minute: int | None = strawberry_django.field(
        description="The token's own ingested-rows-per-minute limit; null: the server's default."
    )

    @strawberry_django.field(
        only=["requests_per_minute"], description="The requests-per-minute limit in force."
    )
    def effective_requests_per_minute(self) -> int:
        return rate_limits.token_limit(self, rate_limits.LimitKind.REQUESTS)  # type: ignore[arg-type]

    @strawberry_django.field(
        only=["rows_per_minute"], description="The ingested-rows-per-minute limit in force."
    )
    def effective_rows_per_minute(self) -> int:
        return rate_limits.token_limit(self, rate_limits.LimitKind.ROWS)  # type: ignore[arg-type]

    @strawberry_django.field(only=["key_id"], description="The public part of the token.")
    def prefix(self) -> str:
        return self.prefix

    @strawberry_django.field(only=["revoked_at", "expires_at"])
    def is_active(self) -> bool:
        return self.is_usable()


@strawberry.type(name="Workspace")
class WorkspaceType:
    slug: str
    name: str
    role: MemberRole  # type: ignore[valid-type]


@strawberry.type(name="Me", description="Who is calling, in which workspace, with which scopes.")
class MeType:
    auth_kind: str = strawberry.field(description="user, token or anonymous.")
    username: str | None
    token_name: str | None
    is_superuser: bool
    tenant: TenantType | None
    role: MemberRole | None  # type: ignore[valid-type]
    scopes: list[str]
    workspaces: list[WorkspaceType] = strawberry.field(
        description="Workspaces a signed-in user can choose with the X-Tenant header."
    )
