"""Computing and storing KPI snapshots: dirty-day refreshes and full rebuilds.

A refresh replaces, in one transaction, the day rows of the dirty days and the rows of every
coarser period containing them; readers see the old or the new snapshot, never half of one.
The DirtyDay rows it handled are deleted in the same transaction, so a worker killed
mid-refresh leaves them dirty and the next refresh redoes them.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from kpis import aggregates, pg_aggregates, pg_members
from kpis.catalogue import ADDITIVE_MEASURES, DISTINCT_MEASURES, MEASURES
from kpis.models import KpiSnapshot
from kpis.periods import COARSE_GRAINS, Grain, Period, period_containing
from pipeline.models import Activity, Deal, DirtyDay, Lead, StageTransition
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SUMMED_COLUMNS: tuple[str, ...] = (*ADDITIVE_MEASURES, "weighted_pipeline_change")
DISTINCT_COLUMNS: tuple[str, ...] = DISTINCT_MEASURES
BULK_BATCH = 2000


@dataclass(frozen=True)
class RefreshResult:
    days: int
    periods: int
    rows: int
    seconds: float


def _lock_tenant(tenant: Tenant) -> None:
    # TRICKY: two workers refreshing one tenant would each delete and insert the same rows;
    # a transaction-level advisory lock serialises them (the second then finds little left).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7_240_001, tenant.pk])


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive runs of `days` as half-open [start, end) ranges."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges


def _enclosing_periods(days: Iterable[date], fiscal_start: int) -> list[Period]:
    periods = {
        period_containing(grain, day, fiscal_start) for day in days for grain in COARSE_GRAINS
    }
    return sorted(periods, key=lambda p: (COARSE_GRAINS.index(p.grain), p.start))


def _snapshot(
    tenant: Tenant, grain: str, start: date, end: date, key: tuple, values: dict[str, Any], at
) -> KpiSnapshot:
    _, scope_type, scope_key = key
    row = KpiSnapshot(
        tenant=tenant,
        grain=grain,
        period_start=start,
        period_end=end,
        scope_type=scope_type,
        scope_key=scope_key,
        computed_at=at,
    )
    for name, value in values.items():
        setattr(row, name, value)
    return row


_MEASURE_COLUMNS: tuple[str, ...] = (*SUMMED_COLUMNS, *DISTINCT_COLUMNS)
_INSERT_COLUMNS: tuple[str, ...] = (
    "tenant_id", "grain", "period_start", "period_end", "scope_type", "scope_key",
    "computed_at", *_MEASURE_COLUMNS,
)  # fmt: skip


_MONEY_COLUMNS = (
    *(key for key in ADDITIVE_MEASURES if MEASURES[key].money),
    "weighted_pipeline_change",
)


def _insert(rows: list[KpiSnapshot]) -> None:
    """Insert snapshot rows: one INSERT ... SELECT FROM unnest(arrays) on PostgreSQL."""
    if not rows:
        return
    if not _is_postgres():
        KpiSnapshot.objects.bulk_create(rows, batch_size=BULK_BATCH)
        return
    # NOTE: one array per column keeps the statement and its parameters small; Django's
    # bulk_create would send 30 parameters per row (and COPY is refused under row security).
    columns = {name: [getattr(row, name) for row in rows] for name in _INSERT_COLUMNS}
    for name in _MEASURE_COLUMNS:
        cast = Decimal if name in _MONEY_COLUMNS else int
        columns[name] = [cast(value) for value in columns[name]]
    types = {
        field.column: field.db_type(connection)
        for field in KpiSnapshot._meta.concrete_fields
        if field.column in columns
    }
    arrays = ", ".join(f"%s::{types[name]}[]" for name in _INSERT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO kpis_kpisnapshot ({', '.join(_INSERT_COLUMNS)}) "
            f"SELECT * FROM unnest({arrays})",
            [columns[name] for name in _INSERT_COLUMNS],
        )


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _daily_measures(
    tenant: Tenant, start: date, end: date, zone, activities: aggregates.Rows | None = None
) -> aggregates.Rows:
    """Day measures of [start, end); `activities` holds the days' activity measures (counts
    and distinct counts) when the caller computed them."""
    if not _is_postgres():
        return aggregates.daily_measures(start=start, end=end, zone=zone)
    out: aggregates.Rows = {}
    if activities is None:
        pg_aggregates.activity_measures(out, tenant_id=tenant.pk, start=start, end=end, zone=zone)
    else:
        for key, values in activities.items():
            if start <= key[0] < end:
                out[key] = dict(values)
    pg_aggregates.other_measures(out, tenant_id=tenant.pk, start=start, end=end, zone=zone)
    aggregates.weighted_pipeline_changes(out, start=start, end=end, zone=zone)
    return out


def _write_days(
    tenant: Tenant,
    ranges: list[tuple[date, date]],
    zone,
    at,
    activities: aggregates.Rows | None = None,
) -> int:
    rows: list[KpiSnapshot] = []
    day_filter = Q()
    for start, end in ranges:
        for key, values in _daily_measures(tenant, start, end, zone, activities).items():
            if any(values.values()):
                rows.append(
                    _snapshot(
                        tenant, Grain.DAY, key[0], key[0] + timedelta(days=1), key, values, at
                    )
                )
        day_filter |= Q(period_start__gte=start, period_start__lt=end)
    KpiSnapshot.objects.filter(day_filter, grain=Grain.DAY).delete()
    _insert(rows)
    return len(rows)


def _write_period(
    tenant: Tenant, period: Period, zone, at, distinct: aggregates.Rows | None = None
) -> int:
    """Roll a coarse period up from its day rows, plus its distinct counts.

    `distinct` holds the period's distinct counts when the caller computed them; otherwise
    they are counted from the period's raw rows.
    """
    sums = (
        KpiSnapshot.objects.filter(
            grain=Grain.DAY, period_start__gte=period.start, period_start__lt=period.end
        )
        .values("scope_type", "scope_key")
        .annotate(**{name: Sum(name) for name in SUMMED_COLUMNS})
        .order_by()
    )
    measures: aggregates.Rows = {}
    for row in sums:
        key = (period.start, row.pop("scope_type"), row.pop("scope_key"))
        measures[key] = {name: value for name, value in row.items() if value}
    if distinct is None:
        aggregates.distinct_activity_measures(
            measures, start=period.start, end=period.end, period_start=period.start, zone=zone
        )
    else:
        for key, values in distinct.items():
            measures.setdefault(key, {}).update(values)
    rows = [
        _snapshot(tenant, period.grain, period.start, period.end, key, values, at)
        for key, values in measures.items()
        if any(values.values())
    ]
    KpiSnapshot.objects.filter(grain=period.grain, period_start=period.start).delete()
    _insert(rows)
    return len(rows)


def kpi_snapshots_refresh_days(
    *, tenant: Tenant, days: Iterable[date], rescan: Iterable[date] = ()
) -> RefreshResult:
    """Recompute the snapshots of `days` and of every period containing them (one transaction).

    `rescan`: days whose rows were changed, not only added; the periods containing them
    recount their distinct members from raw rows. Must run inside the tenant's context.
    """
    began = time.perf_counter()
    days = sorted(set(days))
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    at = timezone.now()
    with transaction.atomic():
        _lock_tenant(tenant)
        ranges = _ranges(days)
        rows = _write_days(tenant, ranges, zone, at) if days else 0
        periods = _enclosing_periods(days, tenant.fiscal_year_start_month)
        distinct: dict[Period, aggregates.Rows] = {}
        if _is_postgres() and periods:
            rescan = set(rescan)
            if rescan:
                pg_members.forget(
                    periods=_enclosing_periods(rescan, tenant.fiscal_year_start_month)
                )
            distinct = pg_members.distinct_counts_for_days(
                tenant_id=tenant.pk, days=days, periods=periods, zone=zone
            )
        for period in periods:
            rows += _write_period(tenant, period, zone, at, distinct.get(period))
    return RefreshResult(len(days), len(periods), rows, time.perf_counter() - began)


def kpi_snapshots_refresh_dirty(*, tenant: Tenant, limit: int | None = None) -> RefreshResult:
    """Refresh the tenant's dirty days and clear them in the same transaction.

    A DirtyDay marked while this runs (by a concurrent write) is either seen and cleared here
    after its data committed, or stays for the next refresh; none is lost.
    """
    limit = limit or settings.KPI_REFRESH_MAX_DAYS
    with transaction.atomic():
        _lock_tenant(tenant)
        dirty = list(
            DirtyDay.objects.select_for_update(skip_locked=True)
            .order_by("day")
            .values_list("pk", "day", "rescan")[:limit]
        )
        if not dirty:
            return RefreshResult(0, 0, 0, 0.0)
        result = kpi_snapshots_refresh_days(
            tenant=tenant,
            days=[day for _, day, _ in dirty],
            rescan=[day for _, day, rescan in dirty if rescan],
        )
        DirtyDay.objects.filter(pk__in=[pk for pk, _, _ in dirty]).delete()
    return result


def data_day_range(*, tenant: Tenant) -> tuple[date, date] | None:
    """The tenant-local dates [first, last + 1) that hold any pipeline row."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    instants = []
    for model, fields in (
        (Activity, ("occurred_at",)),
        (Lead, ("created_at",)),
        (StageTransition, ("at",)),
        (Deal, ("created_at", "closed_at")),
    ):
        for field in fields:
            first = model.objects.order_by(field).filter(**{f"{field}__isnull": False})
            low = first.values_list(field, flat=True).first()
            high = first.order_by(f"-{field}").values_list(field, flat=True).first()
            instants.extend(moment for moment in (low, high) if moment is not None)
    if not instants:
        return None
    days = [moment.astimezone(zone).date() for moment in instants]
    return min(days), max(days) + timedelta(days=1)


def kpi_snapshots_rebuild(*, tenant: Tenant) -> RefreshResult:
    """Recompute every snapshot of the tenant from raw rows and clear its dirty days."""
    began = time.perf_counter()
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    at = timezone.now()
    with transaction.atomic():
        _lock_tenant(tenant)
        span = data_day_range(tenant=tenant)
        KpiSnapshot.objects.all().delete()
        DirtyDay.objects.all().delete()
        if _is_postgres():
            pg_members.forget()
        if span is None:
            return RefreshResult(0, 0, 0, time.perf_counter() - began)
        start, end = span
        days = [start + timedelta(days=n) for n in range((end - start).days)]
        periods = _enclosing_periods(days, tenant.fiscal_year_start_month)
        by_grain = _rebuild_activity_measures(tenant, periods, zone) if _is_postgres() else {}
        rows = _write_days(tenant, [(start, end)], zone, at, by_grain.get(Grain.DAY))
        for period in periods:
            rows += _write_period(tenant, period, zone, at, by_grain.get(period))
    return RefreshResult(len(days), len(periods), rows, time.perf_counter() - began)


def _rebuild_activity_measures(tenant: Tenant, periods: list[Period], zone) -> dict[Any, Any]:
    """Activity measures of the days (key Grain.DAY) and distinct counts of every coarse
    period (key: Period), from one pass over the activities."""
    by_grain: dict[str, aggregates.Rows] = {}
    pg_aggregates.activity_measures_by_grain(
        by_grain,
        tenant_id=tenant.pk,
        start=min(p.start for p in periods),
        end=max(p.end for p in periods),
        fiscal_start=tenant.fiscal_year_start_month,
        zone=zone,
    )
    result: dict[Any, Any] = {period: {} for period in periods}
    result[Grain.DAY] = by_grain.get(Grain.DAY, {})
    starts = {(p.grain, p.start): p for p in periods}
    for grain, rows in by_grain.items():
        if grain == Grain.DAY:
            continue
        for key, values in rows.items():
            result[starts[(grain, key[0])]][key] = values
    return result


def kpi_snapshots_warm(*, tenant: Tenant, today: date | None = None) -> int:
    """Build the membership rows of the open periods (those containing today and the latest
    day with data), so the first refresh after a rebuild is as fast as the next ones.

    Returns how many periods were built. PostgreSQL only (a no-op elsewhere).
    """
    if not _is_postgres():
        return 0
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    today = today or timezone.now().astimezone(zone).date()
    span = data_day_range(tenant=tenant)
    days = {today} | ({span[1] - timedelta(days=1)} if span else set())
    periods = _enclosing_periods(days, tenant.fiscal_year_start_month)
    with transaction.atomic():
        _lock_tenant(tenant)
        return pg_members.warm(tenant_id=tenant.pk, periods=periods, zone=zone)
