"""Reading KPI values from snapshots: a fixed number of queries, whatever the range or scopes."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from kpis.catalogue import (
    ADDITIVE_MEASURES,
    CATALOGUE_BY_KEY,
    DISTINCT_MEASURES,
    KEY_PATTERN,
    MEASURES,
    KpiDefinition,
    catalogue_kpis,
)
from kpis.measures import registered_measures
from kpis.models import KpiCustomDefinition, KpiMeasureValue, KpiSnapshot
from kpis.numbers import ratio
from kpis.periods import Grain, Period
from kpis.scopes import KpiScope
from pipeline.models import DirtyDay
from tenants.bounds import shown
from tenants.calendars import count_working_days, days_off
from tenants.errors import NotFound
from tenants.models import Tenant

# The measures stored as columns of a snapshot row (the stock and calendar ones are derived).
SNAPSHOT_COLUMNS: tuple[str, ...] = (*ADDITIVE_MEASURES, *DISTINCT_MEASURES)


@dataclass(frozen=True)
class KpiValue:
    """A KPI for one period and scope: exact value, its numerator and denominator."""

    kpi: KpiDefinition
    period: Period
    scope: KpiScope
    value: Decimal | None
    numerator: Decimal
    denominator: Decimal | None
    computed_at: datetime | None
    pending: bool  # some day of the period is waiting for a refresh


def _custom_definition(row: KpiCustomDefinition) -> KpiDefinition:
    return KpiDefinition(
        key=row.key,
        name_ja=row.name_ja,
        name_en=row.name_en or row.name_ja,
        category=row.category,
        layer=row.layer,
        numerator=row.numerator,
        denominator=row.denominator or None,
        unit=row.unit,
        direction=row.direction,
        reference_value=row.reference_value,
        reference_source=row.reference_source,
        description=row.description,
        builtin=False,
    )


def kpi_catalogue(*, tenant: Tenant) -> list[KpiDefinition]:
    """The built-in KPIs, the KPIs apps registered, then the tenant's own definitions."""
    return [
        *catalogue_kpis(),
        *(_custom_definition(row) for row in KpiCustomDefinition.objects.all()),
    ]


def kpi_definition(*, tenant: Tenant, key: str, field: str | None = "kpi") -> KpiDefinition:
    """One KPI of the tenant's catalogue by key; NotFound (naming the key) for an unknown one."""
    if key in CATALOGUE_BY_KEY:
        return CATALOGUE_BY_KEY[key]
    # NOTE: a key no KPI can have (too long, NUL) is not looked up: PostgreSQL refuses NUL.
    row = (
        KpiCustomDefinition.objects.filter(key=key).first() if KEY_PATTERN.fullmatch(key) else None
    )
    if row is None:
        raise NotFound(f"KPI {shown(key)}", field=field)
    return _custom_definition(row)


def kpi_definitions(*, tenant: Tenant, keys: Iterable[str]) -> dict[str, KpiDefinition]:
    """The KPIs of `keys` that the catalogue has (a query only for keys not built in)."""
    keys = list(dict.fromkeys(keys))
    missing = [key for key in keys if key not in CATALOGUE_BY_KEY and KEY_PATTERN.fullmatch(key)]
    custom = KpiCustomDefinition.objects.filter(key__in=missing) if missing else ()
    return kpi_definitions_from_rows(keys=keys, custom=custom)


def kpi_definitions_from_rows(
    *, keys: Iterable[str], custom: Iterable[KpiCustomDefinition]
) -> dict[str, KpiDefinition]:
    """kpi_definitions from the tenant's definitions read already (others ignored): no query."""
    keys = list(dict.fromkeys(keys))
    found = {key: CATALOGUE_BY_KEY[key] for key in keys if key in CATALOGUE_BY_KEY}
    wanted = {key for key in keys if key not in found}
    for row in custom:
        if row.key in wanted:
            found[row.key] = _custom_definition(row)
    return found


def scope_filter(scopes: Iterable[KpiScope]) -> Q:
    """Rows of any of `scopes` (scope_type, scope_key); matches nothing for no scope."""
    # NOTE: one IN per scope type rather than one OR branch per scope: the same rows, with
    # fewer conditions for the ORM to build (the tree and dashboard reads build several).
    keys: dict[str, list[str]] = {}
    for scope in scopes:
        keys.setdefault(scope.type, []).append(scope.key)
    return _any_of(
        Q(scope_type=kind, scope_key=found[0])
        if len(found) == 1
        else Q(scope_type=kind, scope_key__in=sorted(set(found)))
        for kind, found in keys.items()
    )


def period_filter(periods: Iterable[Period]) -> Q:
    """Rows of any of `periods` (grain, period_start); matches nothing for no period."""
    starts: dict[str, list[date]] = {}
    for period in periods:
        starts.setdefault(period.grain, []).append(period.start)
    return _any_of(
        Q(grain=grain, period_start=found[0])
        if len(found) == 1
        else Q(grain=grain, period_start__in=sorted(set(found)))
        for grain, found in starts.items()
    )


def _any_of(conditions: Iterable[Q]) -> Q:
    combined: Q | None = None
    for condition in conditions:
        combined = condition if combined is None else combined | condition
    return Q(pk__in=[]) if combined is None else combined


def snapshot_columns(needed: Iterable[str]) -> tuple[str, ...]:
    """The snapshot columns the `needed` measures are computed from, in table order."""
    needed = set(needed)
    return tuple(
        name
        for name in SNAPSHOT_COLUMNS
        if name in needed or (name == "active_reps" and "rep_working_days" in needed)
    )


def registered_keys(needed: Iterable[str]) -> list[str]:
    """The registered (app) measures among `needed`, stored as KpiMeasureValue rows."""
    needed = set(needed)
    return [measure.key for measure in registered_measures() if measure.key in needed]


def registered_rows(
    *, periods: Sequence[Period], scopes: Sequence[KpiScope], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The stored values of the registered measures `keys` over the periods and scopes, in
    one indexed query (none without keys): (grain, period_start, scope_type, scope_key,
    measure, value)."""
    if not keys or not periods or not scopes:
        return []
    return list(
        KpiMeasureValue.objects.filter(
            period_filter(periods), scope_filter(scopes), measure__in=sorted(keys)
        ).values_list("grain", "period_start", "scope_type", "scope_key", "measure", "value")
    )


def measure_values(
    *,
    tenant: Tenant,
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    needed: Iterable[str] | None = None,
    off_days: set[date] | None = None,
) -> dict[tuple[Period, KpiScope], dict[str, Any]]:
    """Every measure (or only those `needed`) for each (period, scope), in four queries at most
    (five when registered measures are needed).

    Missing snapshot rows are zeros. Stocks are summed from the day changes before each
    period's end; working days come from the tenant's calendar, whose days off over the
    periods a caller that has read them already passes as `off_days` (one query fewer).
    Only the snapshot columns of the `needed` measures are read (and returned).
    """
    needed = set(MEASURES) if needed is None else set(needed)
    # NOTE: reading only the needed columns matters: the ORM's cost of a query grows with
    # its columns, and a tree or a leaderboard needs a few of the snapshot's thirty.
    columns = snapshot_columns(needed)
    periods = list(dict.fromkeys(periods))
    scopes = list(dict.fromkeys(scopes))
    if not periods or not scopes:
        return {}
    rows = KpiSnapshot.objects.filter(period_filter(periods), scope_filter(scopes)).values_list(
        "grain", "period_start", "scope_type", "scope_key", "computed_at", *columns
    )
    stocks = (
        stock_levels(scopes=scopes, ends=[period.end for period in periods])
        if "weighted_pipeline" in needed
        else {}
    )
    first, last = measure_days(periods)
    off: set[date] = set()
    if needed & CALENDAR_MEASURES:
        off = days_off(tenant, first, last) if off_days is None else off_days
    dirty = set(DirtyDay.objects.filter(day__gte=first, day__lt=last).values_list("day", flat=True))
    registered = registered_rows(periods=periods, scopes=scopes, keys=registered_keys(needed))
    return measures_from_rows(
        periods=periods,
        scopes=scopes,
        needed=needed,
        row_columns=columns,
        rows=rows,
        stocks=stocks,
        off=off,
        dirty=dirty,
        rebuilding=tenant.kpi_rebuild_requested_at is not None,
        registered=registered,
    )


# Measures computed from the tenant's calendar rather than read from a snapshot.
CALENDAR_MEASURES: frozenset[str] = frozenset({"working_days", "rep_working_days"})


def measure_days(periods: Iterable[Period]) -> tuple[date, date]:
    """[first, last): the days whose days off and pending refreshes a read of `periods` needs."""
    periods = list(periods)
    return min(p.start for p in periods), max(p.end for p in periods)


def stock_levels(
    *, scopes: Sequence[KpiScope], ends: Iterable[date]
) -> dict[KpiScope, dict[date, Decimal]]:
    """The weighted pipeline of each scope at each end: the day changes before it, one query."""
    ends = sorted(set(ends))
    if not ends or not scopes:
        return {}
    days = KpiSnapshot.objects.filter(
        scope_filter(scopes), grain=Grain.DAY, period_start__lt=ends[-1]
    )
    if connection.vendor != "postgresql":
        return _stock_levels_summed_exactly(days, ends)
    rows = (
        days.values("scope_type", "scope_key")
        .annotate(
            **{
                f"end_{index}": Sum("weighted_pipeline_change", filter=Q(period_start__lt=end))
                for index, end in enumerate(ends)
            }
        )
        .order_by()
    )
    return {
        KpiScope(row["scope_type"], row["scope_key"]): {
            end: row[f"end_{index}"] or Decimal(0) for index, end in enumerate(ends)
        }
        for row in rows
    }


def _stock_levels_summed_exactly(
    days: QuerySet[KpiSnapshot], ends: list[date]
) -> dict[KpiScope, dict[date, Decimal]]:
    """stock_levels summed in Python (SQLite).

    TRICKY: SQLite sums decimal columns as floats, so changes that cancel out summed to
    -2.8e-17 rather than 0 (a weighted pipeline of -0.0000); each stored value reads back
    as an exact Decimal, and their sum here is exact.
    """
    levels: dict[KpiScope, dict[date, Decimal]] = {}
    rows = (
        days.exclude(weighted_pipeline_change=0)
        .values_list("scope_type", "scope_key", "period_start", "weighted_pipeline_change")
        .order_by()
    )
    for scope_type, scope_key, day, change in rows:
        level = levels.setdefault(KpiScope(scope_type, scope_key), dict.fromkeys(ends, Decimal(0)))
        for end in ends[bisect_right(ends, day) :]:
            level[end] += change
    return levels


def measures_from_rows(
    *,
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    needed: Iterable[str],
    row_columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    stocks: dict[KpiScope, dict[date, Decimal]],
    off: set[date],
    dirty: set[date],
    rebuilding: bool = False,
    registered: Iterable[Sequence[Any]] = (),
) -> dict[tuple[Period, KpiScope], dict[str, Any]]:
    """measure_values from what it reads, so that a reader of its own gives the same result.

    `rows` are snapshot rows (grain, period_start, scope_type, scope_key, computed_at,
    *row_columns), rows of other periods or scopes ignored; `stocks` are stock_levels;
    `off` the days off and `dirty` the days waiting for a refresh over measure_days;
    `rebuilding`: a rebuild of the tenant waits, so every value is pending; `registered`
    the registered_rows of the registered measures needed (zero where missing).
    """
    needed = set(needed)
    columns = snapshot_columns(needed)
    picks = [(name, row_columns.index(name)) for name in columns]
    periods = list(dict.fromkeys(periods))
    scopes = list(dict.fromkeys(scopes))
    extra = registered_keys(needed)
    result: dict[tuple[Period, KpiScope], dict[str, Any]] = {
        (period, scope): dict.fromkeys(columns, 0)
        | dict.fromkeys(extra, Decimal(0))
        | {"weighted_pipeline": Decimal(0), "_computed_at": None, "_pending": False}
        for period in periods
        for scope in scopes
    }
    if not result:
        return result
    by_start: dict[tuple[str, date], list[Period]] = {}
    for period in periods:
        by_start.setdefault((period.grain, period.start), []).append(period)
    for grain, start, scope_type, scope_key, computed_at, *row in rows:
        scope = KpiScope(scope_type, scope_key)
        for period in by_start.get((grain, start), []):
            values = result.get((period, scope))
            if values is None:
                continue
            for name, index in picks:
                values[name] = row[index]
            values["_computed_at"] = computed_at
    for grain, start, scope_type, scope_key, key, value in registered:
        for period in by_start.get((grain, start), []):
            values = result.get((period, KpiScope(scope_type, scope_key)))
            if values is not None and key in values:
                values[key] = _as_stored(key, value)
    if "weighted_pipeline" in needed:
        for (period, scope), values in result.items():
            values["weighted_pipeline"] = stocks.get(scope, {}).get(period.end) or Decimal(0)
    calendar = bool(needed & CALENDAR_MEASURES)
    for (period, _scope), values in result.items():
        values["working_days"] = (
            count_working_days(period.start, period.end, off) if calendar else 0
        )
        values["rep_working_days"] = values.get("active_reps", 0) * values["working_days"]
        values["_pending"] = rebuilding or any(period.contains(day) for day in dirty)
    return result


def _as_stored(key: str, value: Decimal) -> Decimal | int:
    """A registered measure's value as a built-in column of its kind reads: a count as an
    int (the table stores 6 decimal places for every measure), money as stored."""
    measure = MEASURES.get(key)
    if measure is not None and not measure.money and value == value.to_integral_value():
        return int(value)
    return value


def kpi_value(
    kpi: KpiDefinition, period: Period, scope: KpiScope, measures: dict[str, Any]
) -> KpiValue:
    numerator = Decimal(measures.get(kpi.numerator) or 0)
    denominator = None
    if kpi.denominator is not None:
        denominator = Decimal(measures.get(kpi.denominator) or 0)
        value = ratio(numerator, denominator, multiplier=kpi.multiplier)
    else:
        value = numerator
    return KpiValue(
        kpi=kpi,
        period=period,
        scope=scope,
        value=value,
        numerator=numerator,
        denominator=denominator,
        computed_at=measures.get("_computed_at"),
        pending=bool(measures.get("_pending")),
    )


def kpi_values(
    *,
    tenant: Tenant,
    kpis: Sequence[KpiDefinition],
    periods: Sequence[Period],
    scopes: Sequence[KpiScope],
    off_days: set[date] | None = None,
) -> dict[tuple[str, Period, KpiScope], KpiValue]:
    """Each KPI for each (period, scope), from snapshots, in a fixed number of queries.

    `off_days`: the tenant's days off over the periods, when the caller has read them.
    """
    needed = {measure for kpi in kpis for measure in kpi.measures}
    measures = measure_values(
        tenant=tenant, periods=periods, scopes=scopes, needed=needed, off_days=off_days
    )
    return kpi_values_from_measures(kpis=kpis, measures=measures)


def kpi_values_from_measures(
    *,
    kpis: Sequence[KpiDefinition],
    measures: dict[tuple[Period, KpiScope], dict[str, Any]],
) -> dict[tuple[str, Period, KpiScope], KpiValue]:
    """kpi_values from measure_values (or measures_from_rows): no query."""
    return {
        (kpi.key, period, scope): kpi_value(kpi, period, scope, values)
        for (period, scope), values in measures.items()
        for kpi in kpis
    }
