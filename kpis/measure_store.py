"""Computing and storing the registered measures (KpiMeasureValue), by the snapshot passes.

A refresh recomputes each registered measure only on the dirty days whose kinds make it
dirty, and moves every coarser period containing them by the change of those days (old
period + new days - old days, exact decimal sums): no period is rescanned. A rebuild
recomputes every day and sums the periods from them, writing only the rows that differ.
Both run in the snapshot pass's transaction, under its tenant lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from kpis import failures
from kpis.measures import Measure, is_dirty, registered_measures
from kpis.models import KpiMeasureBuild, KpiMeasureValue
from kpis.periods import COARSE_GRAINS, Grain, Period, period_containing
from tenants.models import Tenant

BULK_BATCH = 2000

_PASS_CACHE: ContextVar[dict | None] = ContextVar("kpis_measure_pass_cache", default=None)


def pass_cache() -> dict:
    """A dict the daily functions of one refresh or rebuild pass may share (two measures
    over the same facts compute them once): the rows cannot change during a pass (one
    transaction, under the tenant's lock). Outside a pass, a new dict each call."""
    cache = _PASS_CACHE.get()
    return {} if cache is None else cache


@contextmanager
def _one_pass() -> Iterator[None]:
    token = _PASS_CACHE.set({})
    try:
        yield
    finally:
        _PASS_CACHE.reset(token)


# (grain, period_start, scope_type, scope_key) -> value, for one measure.
Values = dict[tuple[str, date, str, str], Decimal]


def day_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive runs of `days` as half-open [start, end) ranges."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges


def _period_of(grain: str, day: date, fiscal_start: int, cache: dict) -> Period:
    key = (grain, day)
    if key not in cache:
        cache[key] = period_containing(grain, day, fiscal_start)
    return cache[key]


def _days_values(measure: Measure, tenant: Tenant, days: Iterable[date], zone) -> Values:
    """The measure's day values over `days` (zeros left out)."""
    postgres = connection.vendor == "postgresql"
    out: Values = {}
    wanted = set(days)
    for start, end in day_ranges(wanted):
        computed = measure.daily_values(
            tenant_id=tenant.pk, start=start, end=end, zone=zone, postgres=postgres
        )
        for (day, scope_type, scope_key), value in computed.items():
            # NOTE: a daily function may return days around the range: only these count.
            if day in wanted and value:
                key = (Grain.DAY, day, scope_type, scope_key)
                out[key] = out.get(key, Decimal(0)) + Decimal(value)
    return out


def _stored(measure: Measure, where: Q) -> dict[tuple[str, date, str, str], tuple[int, Decimal]]:
    return _stored_of([measure], where).get(measure.key, {})


def _stored_of(
    measures: list[Measure], where: Q
) -> dict[str, dict[tuple[str, date, str, str], tuple[int, Decimal]]]:
    """`_stored` of several measures in one read, by measure key."""
    out: dict[str, dict[tuple[str, date, str, str], tuple[int, Decimal]]] = {}
    if not measures:
        return out
    rows = KpiMeasureValue.objects.filter(
        where, measure__in=[measure.key for measure in measures]
    ).values_list("measure", "pk", "grain", "period_start", "scope_type", "scope_key", "value")
    for key, pk, grain, start, scope_type, scope_key, value in rows:
        out.setdefault(key, {})[(grain, start, scope_type, scope_key)] = (pk, value)
    return out


def _write(
    tenant: Tenant,
    measure: Measure,
    stored: dict[tuple[str, date, str, str], tuple[int, Decimal]],
    new: Values,
    at,
) -> int:
    """Make the stored rows of `stored`'s keys equal to `new` (zeros deleted), writing only
    the rows that differ. Returns the rows written."""
    gone = [pk for key, (pk, value) in stored.items() if new.get(key, 0) != value]
    if gone:
        KpiMeasureValue.objects.filter(pk__in=gone).delete()
    added = [
        KpiMeasureValue(
            tenant=tenant,
            grain=grain,
            period_start=start,
            scope_type=scope_type,
            scope_key=scope_key,
            measure=measure.key,
            value=value,
            computed_at=at,
        )
        for (grain, start, scope_type, scope_key), value in new.items()
        if value and stored.get((grain, start, scope_type, scope_key), (0, 0))[1] != value
    ]
    KpiMeasureValue.objects.bulk_create(added, batch_size=BULK_BATCH)
    return len(gone) + len(added)


def _day_filter(days: Iterable[date]) -> Q:
    where = Q(pk__in=[])
    for start, end in day_ranges(days):
        where |= Q(period_start__gte=start, period_start__lt=end)
    return Q(grain=Grain.DAY) & where


def _period_filter(periods: Iterable[Period]) -> Q:
    where = Q(pk__in=[])
    for period in periods:
        where |= Q(grain=period.grain, period_start=period.start)
    return where


def refresh(**arguments) -> int:
    """Recompute the registered measures on the dirty days (see _refresh), in one pass."""
    with _one_pass():
        return _refresh(**arguments)


def _refresh(
    *,
    tenant: Tenant,
    days: list[date],
    kinds: dict[date, int] | None,
    zone,
    at,
    span: Callable[[], tuple[date, date] | None],
) -> int:
    """Recompute the registered measures on `days` (those their day's `kinds` make dirty;
    None: every one) and move their enclosing periods by the change. A measure the tenant
    has not built yet is built whole over `span()` (the tenant's days with data) instead.
    Returns rows written."""
    measures = registered_measures()
    if not measures:
        return 0
    built = set(KpiMeasureBuild.objects.values_list("measure", flat=True))
    written = 0
    fiscal_start = tenant.fiscal_year_start_month
    cache: dict = {}
    due: list[tuple[Measure, list[date], Values, set[Period]]] = []
    for measure in measures:
        if measure.key not in built:
            written += _rebuild_measure(measure, tenant, span(), zone, at, cache)
            KpiMeasureBuild.objects.create(tenant=tenant, measure=measure.key, built_at=at)
            continue
        dirty = [day for day in days if kinds is None or is_dirty(measure, kinds[day])]
        if not dirty:
            continue
        dirty = _with_related_days(measure, tenant, dirty, zone)
        periods = {_period_of(g, day, fiscal_start, cache) for day in dirty for g in COARSE_GRAINS}
        due.append((measure, dirty, _days_values(measure, tenant, dirty, zone), periods))
    # NOTE: the stored values of every due measure in one read (one per measure and kind of
    # row cost a round trip each on every refresh, most of them finding nothing).
    stored = _stored_of(
        [measure for measure, *_ in due],
        _day_filter({day for _, dirty, _, _ in due for day in dirty})
        | _period_filter({period for *_, periods in due for period in periods}),
    )
    for measure, dirty, new_days, periods in due:
        values = stored.get(measure.key, {})
        wanted_days = set(dirty)
        wanted_periods = {(period.grain, period.start) for period in periods}
        old_days = {k: v for k, v in values.items() if k[0] == Grain.DAY and k[1] in wanted_days}
        old_periods = {k: v for k, v in values.items() if (k[0], k[1]) in wanted_periods}
        new_periods: Values = {key: value for key, (_, value) in old_periods.items()}
        for sign, values_of in ((1, new_days), (-1, {k: v for k, (_, v) in old_days.items()})):
            for (_, day, scope_type, scope_key), value in values_of.items():
                for grain in COARSE_GRAINS:
                    period = _period_of(grain, day, fiscal_start, cache)
                    key = (grain, period.start, scope_type, scope_key)
                    new_periods[key] = new_periods.get(key, Decimal(0)) + sign * value
        written += _write(tenant, measure, old_days, new_days, at)
        written += _write(tenant, measure, old_periods, new_periods, at)
    return written


def _with_related_days(measure: Measure, tenant: Tenant, dirty: list[date], zone) -> list[date]:
    """`dirty` and the days its changes move too (Measure.related_days)."""
    if measure.related_days is None:
        return dirty
    more: set[date] = set()
    for start, end in day_ranges(dirty):
        more |= measure.related_days(tenant_id=tenant.pk, start=start, end=end, zone=zone)
    return sorted(set(dirty) | {day for day in more if failures.is_supported(day)})


def rebuild(**arguments) -> int:
    """Recompute every registered measure (see _rebuild), in one pass."""
    with _one_pass():
        return _rebuild(**arguments)


def _rebuild(*, tenant: Tenant, span: tuple[date, date] | None, zone, at) -> int:
    """Recompute every registered measure over `span` (the tenant's days with data) and
    sum its periods; rows outside it go. Writes only the rows that differ. Values of a
    measure no longer registered go (nothing kept them current)."""
    keys = [measure.key for measure in registered_measures()]
    KpiMeasureValue.objects.exclude(measure__in=keys).delete()
    KpiMeasureBuild.objects.exclude(measure__in=keys).delete()
    written = 0
    cache: dict = {}
    for measure in registered_measures():
        written += _rebuild_measure(measure, tenant, span, zone, at, cache)
    built = set(KpiMeasureBuild.objects.values_list("measure", flat=True))
    KpiMeasureBuild.objects.bulk_create(
        [
            KpiMeasureBuild(tenant=tenant, measure=key, built_at=at)
            for key in keys
            if key not in built
        ]
    )
    return written


def _rebuild_measure(
    measure: Measure, tenant: Tenant, span: tuple[date, date] | None, zone, at, cache: dict
) -> int:
    """Every value of `measure` from its days over `span` (and its own span)."""
    stored = _stored(measure, Q())
    new: Values = {}
    covered = _union(span, measure.span(tenant_id=tenant.pk, zone=zone) if measure.span else None)
    if covered is not None:
        first, end = covered
        days = [first + timedelta(days=n) for n in range((end - first).days)]
        # NOTE: a measure's own span is not clamped as the pipeline's is: days outside the
        # supported range have no periods.
        days = [day for day in days if failures.is_supported(day)]
        new = _days_values(measure, tenant, days, zone)
        for (_, day, scope_type, scope_key), value in list(new.items()):
            for grain in COARSE_GRAINS:
                period = _period_of(grain, day, tenant.fiscal_year_start_month, cache)
                key = (grain, period.start, scope_type, scope_key)
                new[key] = new.get(key, Decimal(0)) + value
    return _write(tenant, measure, stored, new, at)


def _union(
    one: tuple[date, date] | None, other: tuple[date, date] | None
) -> tuple[date, date] | None:
    if one is None or other is None:
        return one or other
    return min(one[0], other[0]), max(one[1], other[1])


def forget() -> None:
    """Drop every registered measure value of the tenant in context (a rebuild by days: its
    first refresh builds each measure whole again)."""
    KpiMeasureValue.objects.all().delete()
    KpiMeasureBuild.objects.all().delete()
