"""Leaderboards and series: one KPI across reps, teams or sources, or across periods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from kpis.catalogue import Direction, KpiDefinition
from kpis.models import KpiMeasureValue, KpiSnapshot
from kpis.periods import Period, periods_overlapping
from kpis.scopes import NO_SOURCE_LABEL, KpiScope, ScopeType
from kpis.selectors import KpiValue, kpi_values
from tenants.errors import ErrorCode, PublicError, ValidationFailed
from tenants.models import Membership, Team, Tenant

MAX_SERIES_POINTS = 400
# KPIs x points of one series request: ten 400-point lines, or fifty 80-point ones.
MAX_SERIES_CELLS = 4_000


@dataclass(frozen=True)
class LeaderboardEntry:
    rank: int | None  # equal values share one (1, 1, 3); None for a null value, listed last
    label: str
    value: KpiValue
    comparison: KpiValue | None


def _rank_key(kpi: KpiDefinition):
    sign = -1 if kpi.direction == Direction.HIGHER_IS_BETTER else 1

    def key(item: tuple[str, KpiValue]) -> tuple:
        label, value = item
        if value.value is None:
            return (1, Decimal(0), label)
        return (0, sign * value.value, label)

    return key


def _candidates(by: str, period: Period) -> dict[KpiScope, str]:
    """The scopes competing in a leaderboard, with their labels."""
    if by == ScopeType.REP:
        return {
            KpiScope.rep(pk): display or username
            for pk, display, username in Membership.objects.filter(role="rep").values_list(
                "pk", "display_name", "user__username"
            )
        } | {
            KpiScope.rep(int(key)): label
            for key, label in _snapshot_scopes(ScopeType.REP, period, _member_labels)
        }
    if by == ScopeType.TEAM:
        return {KpiScope.team(pk): name for pk, name in Team.objects.values_list("pk", "name")}
    if by == ScopeType.SOURCE:
        return {
            KpiScope.source(key): key or NO_SOURCE_LABEL
            for key in _scope_keys(ScopeType.SOURCE, period)
        }
    raise ValidationFailed("A leaderboard ranks reps, teams or sources.", field="by")


def _member_labels(keys: list[str]) -> dict[str, str]:
    return {
        str(pk): display or username
        for pk, display, username in Membership.objects.filter(
            pk__in=[int(k) for k in keys]
        ).values_list("pk", "display_name", "user__username")
    }


def _snapshot_scopes(scope_type: str, period: Period, labels) -> list[tuple[str, str]]:
    """Members who are not reps but have data in the period (managers who call, field sales
    with handoffs)."""
    keys = _scope_keys(scope_type, period)
    names = labels(keys) if keys else {}
    return [(key, names.get(key, key)) for key in keys]


def _scope_keys(scope_type: str, period: Period) -> list[str]:
    """The scope keys with data in the period: snapshot rows or registered measures' values
    (field sales have handoff values and no activity), in one query."""
    where = {"grain": period.grain, "period_start": period.start, "scope_type": scope_type}
    return list(
        KpiSnapshot.objects.filter(**where)
        .order_by()
        .values_list("scope_key", flat=True)
        .union(
            KpiMeasureValue.objects.filter(**where).order_by().values_list("scope_key", flat=True)
        )
    )


def kpi_leaderboard(
    *,
    tenant: Tenant,
    kpi: KpiDefinition,
    period: Period,
    by: str,
    comparison_period: Period | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LeaderboardEntry], int]:
    """Reps, teams or sources ranked by `kpi` in `period` (best first, nulls last): the
    entries from `offset` on, at most `limit`, and how many are ranked in all."""
    candidates = leaderboard_candidates(by=by, period=period)
    periods = [period] + ([comparison_period] if comparison_period else [])
    values = kpi_values(tenant=tenant, kpis=[kpi], periods=periods, scopes=list(candidates))
    return leaderboard_rank(
        kpi=kpi,
        period=period,
        candidates=candidates,
        values=values,
        comparison_period=comparison_period,
        limit=limit,
        offset=offset,
    )


def leaderboard_candidates(*, by: str, period: Period) -> dict[KpiScope, str]:
    """The scopes competing in a leaderboard of `period`, with their labels."""
    return _candidates(by, period)


def leaderboard_rank(
    *,
    kpi: KpiDefinition,
    period: Period,
    candidates: dict[KpiScope, str],
    values: dict[tuple[str, Period, KpiScope], KpiValue],
    comparison_period: Period | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LeaderboardEntry], int]:
    """kpi_leaderboard from values read already (kpi_values over the candidates): no query.

    NOTE: a dashboard reads the values of all its leaderboards at once, then ranks each here.
    """
    ranked = sorted(
        ((candidates[scope], values[(kpi.key, period, scope)]) for scope in candidates),
        key=_rank_key(kpi),
    )
    entries = []
    rank, previous = 0, None
    for position, (label, value) in enumerate(ranked[: offset + limit], start=1):
        # Equal values share the rank of the first of them (1, 1, 3): a tie is not decided
        # by the label, which only orders the tied entries.
        if value.value is not None and value.value != previous:
            rank, previous = position, value.value
        entries.append(
            LeaderboardEntry(
                rank=rank if value.value is not None else None,
                label=label,
                value=value,
                comparison=(
                    values[(kpi.key, comparison_period, value.scope)] if comparison_period else None
                ),
            )
        )
    return entries[offset:], len(ranked)


def kpi_series(
    *,
    tenant: Tenant,
    kpi: KpiDefinition,
    grain: str,
    start: date,
    end: date,
    scope: KpiScope,
    comparison: str | None = None,
) -> list[tuple[KpiValue, KpiValue | None]]:
    """The KPI for every period of `grain` overlapping the dates [start, end]."""
    (series,) = kpi_series_many(
        tenant=tenant,
        kpis=[kpi],
        grain=grain,
        start=start,
        end=end,
        scope=scope,
        comparison=comparison,
    )
    return series


def kpi_series_many(
    *,
    tenant: Tenant,
    kpis: Sequence[KpiDefinition],
    grain: str,
    start: date,
    end: date,
    scope: KpiScope,
    comparison: str | None = None,
) -> list[list[tuple[KpiValue, KpiValue | None]]]:
    """kpi_series of each KPI (in order), read together: the same queries as for one KPI.

    BATCH_TOO_LARGE when KPIs x points exceeds MAX_SERIES_CELLS.
    """
    if end < start:
        raise ValidationFailed("The range ends before it starts.", field="end")
    periods = periods_overlapping(
        grain, start, date.fromordinal(end.toordinal() + 1), tenant.fiscal_year_start_month
    )
    if len(periods) > MAX_SERIES_POINTS:
        raise ValidationFailed(
            f"A series has at most {MAX_SERIES_POINTS} points; narrow the range or use a "
            "coarser grain.",
            field="start",
        )
    if len(kpis) * len(periods) > MAX_SERIES_CELLS:
        raise PublicError(
            f"{len(kpis)} KPIs x {len(periods)} points is over {MAX_SERIES_CELLS} values; "
            "ask for fewer KPIs, a shorter range or a coarser grain.",
            code=ErrorCode.BATCH_TOO_LARGE,
            field="kpis",
        )
    shifted: dict[Period, Period] = {}
    if comparison == "previous_period":
        shifted = {p: p.previous() for p in periods}
    elif comparison == "same_period_last_year":
        shifted = {p: p.same_period_last_year() for p in periods}
    values = kpi_values(
        tenant=tenant, kpis=kpis, periods=[*periods, *shifted.values()], scopes=[scope]
    )
    return [
        [
            (
                values[(kpi.key, period, scope)],
                values[(kpi.key, shifted[period], scope)] if period in shifted else None,
            )
            for period in periods
        ]
        for kpi in kpis
    ]
