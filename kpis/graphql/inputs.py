"""GraphQL inputs shared by the KPI queries: periods, scopes and comparisons."""

from __future__ import annotations

from datetime import date
from enum import Enum

import strawberry
from strawberry import relay

from kpis.models import KpiSnapshot
from kpis.periods import (
    Grain,
    Period,
    PeriodError,
    PeriodOutOfRange,
    parse_period,
    period_containing,
)
from kpis.scopes import KpiScope, ScopeType
from pipeline.models import Lead
from tenants.bounds import day_check, shown, text_check
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
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
        text_check(scope.source, field=field, max_length=50, what="a source")
        return KpiScope.source(scope.source)
    if scope.id is None or scope.source is not None:
        raise ValidationFailed(f"A {scope.type.value} scope needs an `id`.", field=field)
    return None


def _source_known(source: str) -> bool:
    """Whether a lead of the tenant in context has the source, or a snapshot was kept for it."""
    return (
        Lead.objects.filter(source=source).exists()
        or KpiSnapshot.objects.filter(scope_type=ScopeType.SOURCE, scope_key=source).exists()
    )


# How many of the tenant's sources an unknown-source error lists (a CRM may send hundreds).
KNOWN_SOURCES_SHOWN = 20


def known_sources(limit: int = KNOWN_SOURCES_SHOWN) -> list[str]:
    """The first `limit` sources (alphabetical) of the tenant in context: its leads' and those
    kept in snapshots (leads since deleted), without "" (leads without a source)."""
    leads = Lead.objects.exclude(source="").values_list("source", flat=True).distinct()
    kept = (
        KpiSnapshot.objects.filter(scope_type=ScopeType.SOURCE)
        .exclude(scope_key="")
        .values_list("scope_key", flat=True)
        .distinct()
    )
    found = set(leads.order_by("source")[:limit]) | set(kept.order_by("scope_key")[:limit])
    return sorted(found)[:limit]


def unknown_source(source: str, *, field: str) -> PublicError:
    """The error for a source no lead has, naming it and listing the tenant's known ones."""
    known = known_sources()
    listed = ", ".join(shown(name) for name in known)
    more = ", …" if len(known) == KNOWN_SOURCES_SHOWN else ""
    tail = f"Known sources: {listed}{more}." if known else "No lead has a source yet."
    return PublicError(
        f"Lead source {shown(source)} not found. {tail}", code=ErrorCode.NOT_FOUND, field=field
    )


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
        if plain.type == ScopeType.SOURCE and plain.key and not _source_known(plain.key):
            # NOTE: a typo ("Web" for "web") would otherwise read as a row of zeros.
            raise unknown_source(plain.key, field=field)
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
    return period_from_label(label, tenant.fiscal_year_start_month, field=field)


def period_from_label(label: str, fiscal_year_start_month: int, *, field: str) -> Period:
    """parse_period with its errors as PublicErrors naming `field`: OUT_OF_RANGE outside the
    years 1970..2100, else VALIDATION."""
    try:
        return parse_period(label, fiscal_year_start_month)
    except PeriodOutOfRange as exc:
        raise PublicError(str(exc), code=ErrorCode.OUT_OF_RANGE, field=field) from exc
    except PeriodError as exc:
        raise ValidationFailed(str(exc), field=field) from exc


def comparison_period(
    period: Period, comparison: Comparison | None, *, field: str = "comparison"
) -> Period | None:
    """The period to compare with; OUT_OF_RANGE when it would leave the years 1970..2100.

    NOTE: refused rather than answered with a null comparison, so that a null comparison
    always means "none asked for" (1970-01 with PREVIOUS_PERIOD would be 1969-12).
    """
    if comparison is None:
        return None
    if comparison == Comparison.PREVIOUS_PERIOD:
        other = period.previous()
    else:
        other = period.same_period_last_year()
    if not other.in_bounds:
        raise PublicError(
            f"The comparison period {other.label} of {period.label} is outside the years "
            "1970 to 2100.",
            code=ErrorCode.OUT_OF_RANGE,
            field=field,
        )
    return other


def check_series_range(
    *, grain: str, start: date, end: date, comparison: Comparison | None, fiscal_start: int
) -> None:
    """A series' dates within 1970..2100, and its first comparison period too."""
    day_check(start, field="start")
    day_check(end, field="end")
    if comparison is not None and start <= end:
        comparison_period(period_containing(grain, start, fiscal_start), comparison)


__all__ = ["ScopeType", "ScopeTypeEnum"]
