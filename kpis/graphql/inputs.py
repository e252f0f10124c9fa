"""GraphQL inputs shared by the KPI queries: periods, scopes and comparisons."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry import relay

from kpis.periods import Grain, Period, PeriodError, parse_period
from kpis.scopes import KpiScope, ScopeType
from tenants.errors import NotFound, ValidationFailed
from tenants.graphql.base import resolve_global_id
from tenants.graphql.context import Info
from tenants.models import Membership, Team


@strawberry.enum(name="Grain")
class GrainEnum(Enum):
    DAY = Grain.DAY.value
    WEEK = Grain.WEEK.value
    MONTH = Grain.MONTH.value
    QUARTER = Grain.QUARTER.value
    YEAR = Grain.YEAR.value


@strawberry.enum(name="ScopeType")
class ScopeTypeEnum(Enum):
    TENANT = "tenant"
    TEAM = "team"
    REP = "rep"
    SOURCE = "source"


@strawberry.enum(name="Comparison", description="A second period to compare with.")
class Comparison(Enum):
    PREVIOUS_PERIOD = "previous_period"
    SAME_PERIOD_LAST_YEAR = "same_period_last_year"


@strawberry.input(
    name="ScopeInput",
    description=(
        "Whom a KPI is measured for. TENANT takes no id; TEAM takes a Team id; REP a "
        'Membership id; SOURCE takes the lead source in `source` ("" = no source).'
    ),
)
class ScopeInput:
    type: ScopeTypeEnum = ScopeTypeEnum.TENANT
    id: relay.GlobalID | None = None
    source: str | None = None


def _scope_without_id(scope: ScopeInput | None, field: str) -> KpiScope | None:
    """The tenant or source scope an input names; None for a team or rep (checked to carry
    an id)."""
    if scope is None or scope.type == ScopeTypeEnum.TENANT:
        if scope is not None and (scope.id is not None or scope.source is not None):
            raise ValidationFailed("The tenant scope takes no id or source.", field=field)
        return KpiScope.tenant()
    if scope.type == ScopeTypeEnum.SOURCE:
        if scope.source is None or scope.id is not None:
            raise ValidationFailed("A source scope needs `source` and no id.", field=field)
        if len(scope.source) > 50:
            raise ValidationFailed("A source has at most 50 characters.", field=field)
        return KpiScope.source(scope.source)
    if scope.id is None or scope.source is not None:
        raise ValidationFailed(f"A {scope.type.value} scope needs an `id`.", field=field)
    return None


def parse_scope(scope: ScopeInput | None, *, field: str = "scope") -> KpiScope:
    """The KpiScope an input names, without reading the database: a team or rep id is only
    decoded, so the caller checks that it is the tenant's (for a batch, in one query)."""
    plain = _scope_without_id(scope, field)
    if plain is not None:
        return plain
    assert scope is not None and scope.id is not None
    team = scope.type == ScopeTypeEnum.TEAM
    if scope.id.type_name != ("Team" if team else "Membership") or not scope.id.node_id.isdigit():
        raise NotFound("Team" if team else "Member", field=field)
    pk = int(scope.id.node_id)
    return KpiScope.team(pk) if team else KpiScope.rep(pk)


def resolve_scope(info: Info, scope: ScopeInput | None, *, field: str = "scope") -> KpiScope:
    """The KpiScope named by a client's input; another tenant's team or rep is not found."""
    plain = _scope_without_id(scope, field)
    if plain is not None:
        return plain
    assert scope is not None and scope.id is not None
    if scope.type == ScopeTypeEnum.TEAM:
        team = resolve_global_id(info, scope.id, model=Team, type_name="Team", field=field)
        return KpiScope.team(team.pk)
    member = resolve_global_id(
        info, scope.id, model=Membership, type_name="Membership", what="Member", field=field
    )
    return KpiScope.rep(member.pk)


def resolve_period(info: Info, label: str, *, field: str = "period") -> Period:
    """The period named by a label in the request tenant's fiscal calendar."""
    tenant = info.context.require_tenant()
    try:
        return parse_period(label, tenant.fiscal_year_start_month)
    except PeriodError as exc:
        raise ValidationFailed(str(exc), field=field) from exc


def comparison_period(period: Period, comparison: Comparison | None) -> Period | None:
    if comparison is None:
        return None
    if comparison == Comparison.PREVIOUS_PERIOD:
        return period.previous()
    return period.same_period_last_year()


__all__ = ["ScopeType", "ScopeTypeEnum"]
