"""Computing and storing KPI snapshots: dirty-day refreshes and full rebuilds (orchestration;
the SQL is in `rollup_sql`, what the passes share in `common`, the warming ahead of them in
`warm`).

A refresh replaces, in one transaction, the day rows of the dirty days and the rows of every
coarser period containing them; readers see the old or the new snapshot, never half of one.
The DirtyDay rows it handled are deleted in the same transaction, so a worker killed
mid-refresh leaves them dirty and the next refresh redoes them; the same transaction draws
the tenant's data generation anew (kpis.data_generations), which caches of raw-row results key on.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from kpis import aggregates, data_generations, failures, measure_store
from kpis import side_connection as side_connection_work
from kpis.failures import FailedDay
from kpis.hooks import run_periods_refreshed
from kpis.measures import kind_columns
from kpis.models import KpiSnapshot
from kpis.periods import Grain, Period
from kpis.snapshots import daily_sql, literals_sql, members_sql, rollup_sql
from kpis.snapshots.common import (
    data_day_range,
    day_ranges,
    enclosing_periods,
    is_postgres,
    lock_tenant,
)
from kpis.snapshots.rollup_sql import DISTINCT_COLUMNS, SUMMED_COLUMNS
from kpis.snapshots.warm import kpi_snapshots_warm as kpi_snapshots_warm
from pipeline.models import (
    Activity,
    Deal,
    DealStageChange,
    DirtyDay,
    DirtyKind,
    Lead,
    StageTransition,
)
from tenants.context import statement_timeout_raised
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Beyond this many listed (added) activities in one refresh, its days are recounted instead.
MAX_LISTED_PER_REFRESH = 20_000
BULK_BATCH = 2000


@dataclass(frozen=True)
class RefreshResult:
    days: int
    periods: int
    rows: int
    seconds: float
    # Days that could not be computed: kept dirty with the reason, retried later.
    failed: tuple[FailedDay, ...] = ()
    # Snapshot rows a rebuild inserted, updated or deleted (None: not counted apart from
    # `rows`, the rows computed).
    written: int | None = None


@dataclass(frozen=True)
class DayChange:
    """What the writes to a dirty day changed (see DirtyDay): the kinds of measures they can
    move, and the activities they only added (None: recount the day's activities)."""

    kinds: int = DirtyKind.ALL
    added_activities: tuple[int, ...] | None = None


Entry = tuple[str, date, date, str, str, dict[str, Any]]
"""A snapshot row to insert: grain, period start and end, scope type and key, measures."""


def _unnest(entries: list[Entry]) -> tuple[str, dict[str, Any]]:
    """A SELECT of `entries` from one array per column, and its parameters.

    NOTE: one array per column keeps the statement and its parameters small; Django's
    bulk_create would send 30 parameters per row (and COPY is refused under row security).
    """
    types = {field.column: field.db_type(connection) for field in KpiSnapshot._meta.concrete_fields}
    params: dict[str, Any] = {
        f"e_{name}": literals_sql.texts(entry[index] for entry in entries)
        for index, name in enumerate(rollup_sql.KEY_COLUMNS)
    }
    params |= {
        f"e_{name}": literals_sql.numbers(entry[5].get(name, 0) for entry in entries)
        for name in rollup_sql.MEASURE_COLUMNS
    }
    columns = (*rollup_sql.KEY_COLUMNS, *rollup_sql.MEASURE_COLUMNS)
    arrays = ", ".join(f"%(e_{name})s::{types[name]}[]" for name in columns)
    return f"SELECT * FROM unnest({arrays}) AS e({', '.join(columns)})", params


def _insert(tenant: Tenant, entries: list[Entry], at, table: str = rollup_sql.SNAPSHOTS) -> int:
    """Insert snapshot rows (into `table`, PostgreSQL: the snapshots or the rebuild's stage):
    one INSERT ... SELECT FROM unnest(arrays) on PostgreSQL."""
    if not entries:
        return 0
    if not is_postgres():
        KpiSnapshot.objects.bulk_create(
            [
                KpiSnapshot(
                    tenant=tenant,
                    grain=grain,
                    period_start=start,
                    period_end=end,
                    scope_type=scope_type,
                    scope_key=scope_key,
                    computed_at=at,
                    **values,
                )
                for grain, start, end, scope_type, scope_key, values in entries
            ],
            batch_size=BULK_BATCH,
        )
        return len(entries)
    rows, params = _unnest(entries)
    columns = ", ".join((*rollup_sql.KEY_COLUMNS, *rollup_sql.MEASURE_COLUMNS))
    with connection.cursor() as cursor:
        cursor.execute(
            f"{rollup_sql.INSERT_INTO.format(table=table, columns=columns)} "
            f"SELECT %(tenant)s, %(at)s, e.* FROM ({rows}) e",
            params | {"tenant": tenant.pk, "at": at},
        )
    return len(entries)


# The stored columns each kind of change can move, from the measures' declarations; every
# built-in measure has one kind.
KIND_MEASURES: dict[DirtyKind, tuple[str, ...]] = kind_columns()
# The SQL computes each kind's columns together: a declaration must match what it computes.
assert set(KIND_MEASURES[DirtyKind.ACTIVITIES]) == {
    *daily_sql.ACTIVITY_COUNTS,
    *DISTINCT_COLUMNS,
}
assert set(KIND_MEASURES[DirtyKind.TRANSITIONS]) == set(daily_sql.TRANSITION_COUNTS)
assert set(rollup_sql.MEASURE_COLUMNS) == {
    name for names in KIND_MEASURES.values() for name in names
}
_KIND_AGGREGATES = {
    DirtyKind.LEADS: (daily_sql.lead_measures,),
    DirtyKind.TRANSITIONS: (daily_sql.transition_measures,),
    DirtyKind.DEALS: (daily_sql.deal_measures, daily_sql.weighted_pipeline_changes),
}


def _stored_day_rows(tenant: Tenant, days: list[date]) -> aggregates.Rows:
    columns = ", ".join(rollup_sql.MEASURE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT period_start, scope_type, scope_key, {columns} FROM kpis_kpisnapshot "
            "WHERE tenant_id = %s AND grain = 'day' AND period_start = ANY(%s::date[])"
            # NOTE: bounds the index range; the planner filters the array over every day row.
            " AND period_start BETWEEN %s AND %s",
            [tenant.pk, days, min(days), max(days)],
        )
        return {
            (day, scope_type, scope_key): {
                name: value
                for name, value in zip(rollup_sql.MEASURE_COLUMNS, values, strict=True)
                if value
            }
            for day, scope_type, scope_key, *values in cursor.fetchall()
        }


def _changed_day_entries(
    tenant: Tenant,
    days: list[date],
    changes: dict[date, DayChange],
    zone,
    activities: aggregates.Rows,
    added_days: set[date],
) -> list[Entry]:
    """The new day rows of `days` (PostgreSQL): the measures of each kind that changed on a
    day are recomputed from its raw rows, or moved by the counts of the activities added
    (`added_days`, whose `activities` rows are changes); the others keep their stored values.
    """
    rows = _stored_day_rows(tenant, days)
    for kind, names in KIND_MEASURES.items():
        kind_days = {day for day in days if changes[day].kinds & kind}
        if not kind_days:
            continue
        if kind == DirtyKind.ACTIVITIES:
            fresh, replaced = activities, kind_days - added_days
        else:
            fresh, replaced = {}, kind_days
            for start, end in day_ranges(kind_days):
                for measures in _KIND_AGGREGATES[kind]:
                    measures(fresh, tenant_id=tenant.pk, start=start, end=end, zone=zone)
        for (day, *_), values in rows.items():
            if day in replaced:
                for name in names:
                    values.pop(name, None)
        for key, values in fresh.items():
            if key[0] not in kind_days:
                continue
            bucket = rows.setdefault(key, {})
            for name in names:
                if values.get(name):
                    bucket[name] = bucket.get(name, 0) + values[name]
    return [
        (Grain.DAY, day, day + timedelta(days=1), scope_type, scope_key, values)
        for (day, scope_type, scope_key), values in rows.items()
        if any(values.values())
    ]


def _other_measures(tenant_id: int, start: date, end: date, zone) -> aggregates.Rows:
    """Day measures of [start, end) from leads, transitions and deals (PostgreSQL)."""
    out: aggregates.Rows = {}
    daily_sql.other_measures(out, tenant_id=tenant_id, start=start, end=end, zone=zone)
    daily_sql.weighted_pipeline_changes(out, tenant_id=tenant_id, start=start, end=end, zone=zone)
    return out


def _daily_measures(
    tenant: Tenant,
    start: date,
    end: date,
    zone,
    activities: aggregates.Rows | None = None,
    others: aggregates.Rows | None = None,
) -> aggregates.Rows:
    """Day measures of [start, end); `activities` holds the days' activity measures (counts
    and distinct counts) and `others` those of `_other_measures`, when the caller computed
    them."""
    if not is_postgres():
        return aggregates.daily_measures(start=start, end=end, zone=zone)
    out: aggregates.Rows = {}
    if activities is None:
        daily_sql.activity_measures(out, tenant_id=tenant.pk, start=start, end=end, zone=zone)
    else:
        for key, values in activities.items():
            if start <= key[0] < end:
                out[key] = dict(values)
    if others is None:
        others = _other_measures(tenant.pk, start, end, zone)
    # Each measure comes from one source, so the two sets of values never overlap.
    for key, values in others.items():
        if start <= key[0] < end:
            out.setdefault(key, {}).update(values)
    return out


def _day_entries(
    tenant: Tenant,
    ranges: list[tuple[date, date]],
    zone,
    activities: aggregates.Rows | None = None,
    others: aggregates.Rows | None = None,
) -> list[Entry]:
    """The day rows of the dates in `ranges`."""
    entries: list[Entry] = []
    for start, end in ranges:
        for key, values in _daily_measures(tenant, start, end, zone, activities, others).items():
            if any(values.values()):
                day, scope_type, scope_key = key
                entries.append(
                    (Grain.DAY, day, day + timedelta(days=1), scope_type, scope_key, values)
                )
    return entries


def _write_days(
    tenant: Tenant,
    ranges: list[tuple[date, date]],
    zone,
    at,
    activities: aggregates.Rows | None = None,
) -> int:
    entries = _day_entries(tenant, ranges, zone, activities)
    day_filter = Q()
    for start, end in ranges:
        day_filter |= Q(period_start__gte=start, period_start__lt=end)
    KpiSnapshot.objects.filter(day_filter, grain=Grain.DAY).delete()
    return _insert(tenant, entries, at)


def _write_period(
    tenant: Tenant, period: Period, zone, at, distinct: aggregates.Rows | None = None
) -> int:
    """Roll a coarse period up from its day rows, plus its distinct counts (portable path).

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
    entries: list[Entry] = [
        (period.grain, period.start, period.end, scope_type, scope_key, values)
        for (_, scope_type, scope_key), values in measures.items()
        if any(values.values())
    ]
    KpiSnapshot.objects.filter(grain=period.grain, period_start=period.start).delete()
    return _insert(tenant, entries, at)


def _write_periods(
    tenant: Tenant,
    periods: list[Period],
    zone,
    at,
    distinct: dict[Period, aggregates.Rows],
    *,
    days: tuple[list[date], list[Entry]] | None = None,
    staged: bool = False,
) -> int:
    """Roll every coarse period up from its day rows, plus the periods' distinct counts.

    `distinct` holds each period's distinct counts (on PostgreSQL, of every period; on other
    databases a period missing from it has them counted from its raw rows).

    On PostgreSQL one statement writes all periods. Without `days` (a rebuild, which
    deleted every row already) they are summed from their stored day rows; with `days`
    (the changed days and their new day rows) the statement also replaces those days' rows
    and moves the periods' stored rows by the change. `staged` (a rebuild): from the day
    rows of the rebuild's stage, into it. Returns the rows written.
    """
    if not is_postgres():
        return sum(
            _write_period(tenant, period, zone, at, distinct.get(period)) for period in periods
        )
    d_rows = [
        (period.grain, period.start, scope_type, scope_key, values)
        for period in periods
        for (_, scope_type, scope_key), values in distinct[period].items()
    ]
    params = {
        "tenant": tenant.pk,
        "at": at,
        "grains": [p.grain for p in periods],
        "starts": [p.start for p in periods],
        "ends": [p.end for p in periods],
        "d_grains": literals_sql.texts(row[0] for row in d_rows),
        "d_starts": literals_sql.texts(row[1] for row in d_rows),
        "d_types": literals_sql.texts(row[2] for row in d_rows),
        "d_keys": literals_sql.texts(row[3] for row in d_rows),
        "d_leads": literals_sql.numbers(row[4].get("leads_touched", 0) for row in d_rows),
        "d_reps": literals_sql.numbers(row[4].get("active_reps", 0) for row in d_rows),
    }
    if days is None:
        with connection.cursor() as cursor:
            cursor.execute(
                rollup_sql.STAGED_ROLLUP if staged else rollup_sql.REBUILD_ROLLUP, params
            )
            return cursor.rowcount
    day_list, entries = days
    rows, day_params = _unnest(entries)
    params |= day_params | {
        "days": day_list,
        "first_day": min(day_list),
        "last_day": max(day_list),
    }
    with connection.cursor() as cursor:
        cursor.execute(rollup_sql.refresh_sync(rows), params)
        return cursor.fetchone()[0]


def kpi_snapshots_refresh_days(*, tenant: Tenant, days: Iterable[date]) -> RefreshResult:
    """Recompute the snapshots of `days` from their raw rows (each day recounted whole, as a
    rescan), and of every period containing them (one transaction), and clear the days'
    dirty marks, which this supersedes. Must run inside the tenant's context.
    """
    began = time.perf_counter()
    # Days outside the supported range are never computed (see kpis.failures).
    days = sorted(day for day in set(days) if failures.is_supported(day))
    with transaction.atomic():
        lock_tenant(tenant)
        # TRICKY: a mark left behind would list activities this counts, and the refresh that
        # later handles it would count them again. Locked first: a write marking one of the
        # days meanwhile waits, then marks it anew for rows this did not see.
        marks = list(
            DirtyDay.objects.select_for_update().filter(day__in=days).values_list("pk", flat=True)
        )
        result = _refresh_days(tenant, days, (), None, began)
        DirtyDay.objects.filter(pk__in=marks).delete()
        data_generations.generation_renew(tenant)
        run_periods_refreshed(tenant.pk, days)  # after commit: alerts evaluate
    return result


def _refresh_days(
    tenant: Tenant,
    days: Iterable[date],
    rescan: Iterable[date],
    changes: dict[date, DayChange] | None,
    began: float,
) -> RefreshResult:
    """kpi_snapshots_refresh_days, in a transaction that holds the tenant's lock."""
    days = sorted(set(days))
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    at = timezone.now()
    with daily_sql.refresh_settings() if is_postgres() else nullcontext():
        periods = enclosing_periods(days, tenant.fiscal_year_start_month)
        if not is_postgres():
            rows = _write_days(tenant, day_ranges(days), zone, at) if days else 0
            rows += _write_periods(tenant, periods, zone, at, {})
            # Every measure of the days is recomputed here, whatever their marks say.
            rows += measure_store.refresh(
                tenant=tenant,
                days=days,
                kinds=None,
                zone=zone,
                at=at,
                span=lambda: data_day_range(tenant=tenant),
            )
        elif days:
            rescan = set(rescan)
            changes = {
                day: DayChange() if day in rescan else (changes or {}).get(day, DayChange())
                for day in days
            }
            # The days' activities are read once, for their members and their day counts.
            activity_days = [day for day in days if changes[day].kinds & DirtyKind.ACTIVITIES]
            listed = sum(len(changes[day].added_activities or ()) for day in activity_days)
            if listed > MAX_LISTED_PER_REFRESH:
                # NOTE: each day's statement carries the ids of the days after it (they are
                # not counted yet); past a bulk import's size, recounting is cheaper.
                changes |= {day: DayChange(changes[day].kinds) for day in activity_days}
            # A day whose new activities are not listed (or whose rows changed) may hold
            # rows counted before: its periods count their distinct members anew.
            recount = [day for day in activity_days if changes[day].added_activities is None]
            if recount:
                members_sql.forget(
                    periods=enclosing_periods(recount, tenant.fiscal_year_start_month),
                    days=recount,
                )
            distinct, activities, added_days = members_sql.distinct_counts_for_days(
                tenant_id=tenant.pk,
                days=activity_days,
                periods=periods,
                zone=zone,
                added={
                    day: list(changes[day].added_activities or ())
                    for day in activity_days
                    if changes[day].added_activities is not None
                },
            )
            entries = _changed_day_entries(tenant, days, changes, zone, activities, added_days)
            rows = _write_periods(tenant, periods, zone, at, distinct, days=(days, entries))
            rows += measure_store.refresh(
                tenant=tenant,
                days=days,
                kinds={day: int(change.kinds) for day, change in changes.items()},
                zone=zone,
                at=at,
                span=lambda: data_day_range(tenant=tenant),
            )
        else:
            rows = 0
    return RefreshResult(len(days), len(periods), rows, time.perf_counter() - began)


_MARK_COLUMNS = ("pk", "day", "rescan", "kinds", "added_activities")
Mark = tuple[int, date, bool, int, list[int] | None]


def _due_marks(limit: int, now: datetime) -> list[Mark]:
    """The tenant's dirty days due now (not waiting for a retry), first days first, locked."""
    return list(
        DirtyDay.objects.select_for_update(skip_locked=True)
        .filter(failures.due(now))
        .order_by("day")
        .values_list(*_MARK_COLUMNS)[:limit]
    )


def _refresh_marks(tenant: Tenant, marks: list[Mark], began: float) -> RefreshResult:
    """Refresh the days of `marks` and delete the marks, in the caller's transaction."""
    result = _refresh_days(
        tenant,
        days=[mark[1] for mark in marks],
        rescan=[mark[1] for mark in marks if mark[2]],
        changes={
            day: DayChange(kinds, None if added is None else tuple(added))
            for _, day, _, kinds, added in marks
        },
        began=began,
    )
    DirtyDay.objects.filter(pk__in=[mark[0] for mark in marks]).delete()
    data_generations.generation_renew(tenant)
    # NOTE: told on commit; a savepoint that rolls back (a failing group) drops the call.
    run_periods_refreshed(tenant.pk, [mark[1] for mark in marks])
    return result


def _recoverable(error: Exception) -> bool:
    """Whether a failed refresh may go on with other days: not when the task ran out of
    time or the connection is gone (every further statement would fail too)."""
    if isinstance(error, SoftTimeLimitExceeded | InterfaceError):
        return False
    return connection.is_usable()


def kpi_snapshots_refresh_dirty(*, tenant: Tenant, limit: int | None = None) -> RefreshResult:
    """Refresh the tenant's dirty days that are due and clear them in the same transaction.

    A DirtyDay marked while this runs (by a concurrent write) is either seen and cleared here
    after its data committed, or stays for the next refresh; none is lost. Days that cannot
    be computed (outside the supported range, or failing) stay dirty with the reason and a
    retry time (see `_refresh_isolating`); the others are refreshed and cleared.
    """
    limit = limit or settings.KPI_REFRESH_MAX_DAYS
    now = timezone.now()
    began = time.perf_counter()
    try:
        with transaction.atomic():
            lock_tenant(tenant)
            dirty = _due_marks(limit, now)
            if not dirty:
                return RefreshResult(0, 0, 0, 0.0)
            if all(failures.is_supported(mark[1]) for mark in dirty):
                # NOTE: this transaction holds the lock: no savepoint or second lock for the
                # days. Nothing is added here for failures: they are rare, and the path
                # below redoes the work in smaller groups when one happens.
                return _refresh_marks(tenant, dirty, began)
    except Exception as error:
        if not _recoverable(error):
            raise
        logger.warning(
            "Refresh of tenant %s failed (%s); retrying its days in smaller groups.",
            tenant.pk,
            failures.error_text(error),
        )
        return _refresh_isolating(tenant, limit, now, began, failed_whole=True)
    return _refresh_isolating(tenant, limit, now, began, failed_whole=False)


def _refresh_isolating(
    tenant: Tenant, limit: int, now: datetime, began: float, *, failed_whole: bool
) -> RefreshResult:
    """kpi_snapshots_refresh_dirty after a failure, or with days outside the range.

    A day outside the supported range is not computed: its mark goes once no row is left
    on it, else it is failed with the rows named. The others are refreshed in groups, each
    in a savepoint; a failing group is halved until each failing day stands alone, so every
    other day commits and only the failing ones keep their marks, with the reason.
    `failed_whole`: the days failed together already; they start halved.
    """
    errors: dict[date, str] = {}
    days = periods = rows = 0
    with transaction.atomic():
        lock_tenant(tenant)
        dirty = _due_marks(limit, now)
        outside = [mark for mark in dirty if not failures.is_supported(mark[1])]
        if outside:
            found = failures.outside_errors(failures.rows_outside(tenant=tenant))
            errors |= {mark[1]: found[mark[1]] for mark in outside if mark[1] in found}
            DirtyDay.objects.filter(
                pk__in=[mark[0] for mark in outside if mark[1] not in found]
            ).delete()
            data_generations.generation_renew(tenant)
        inside = [mark for mark in dirty if failures.is_supported(mark[1])]
        half = len(inside) // 2
        groups = [inside[half:], inside[:half]] if failed_whole and half else [inside]
        while groups:
            group = groups.pop()
            if not group:
                continue
            try:
                with transaction.atomic():
                    result = _refresh_marks(tenant, group, began)
            except Exception as error:
                if not _recoverable(error):
                    raise
                if len(group) > 1:
                    half = len(group) // 2
                    groups += [group[half:], group[:half]]  # the earlier days first
                    continue
                errors[group[0][1]] = failures.error_text(error)
                logger.warning(
                    "Refresh of tenant %s failed on %s: %s",
                    tenant.pk,
                    group[0][1],
                    errors[group[0][1]],
                    exc_info=True,
                )
                continue
            days, periods, rows = days + result.days, periods + result.periods, rows + result.rows
        failed = failures.record_failures(tenant=tenant, errors=errors, now=now)
    return RefreshResult(days, periods, rows, time.perf_counter() - began, tuple(failed))


def _nothing_written() -> bool:
    """Whether this connection's transaction has written nothing yet (PostgreSQL), so that
    another connection sees the same committed rows."""
    with connection.cursor() as cursor:
        # A transaction is given an id at its first write.
        cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NULL")
        return cursor.fetchone()[0]


def _bulk_other_measures(tenant_id: int, start: date, end: date, zone) -> aggregates.Rows:
    with daily_sql.bulk_settings():
        return _other_measures(tenant_id, start, end, zone)


def kpi_snapshots_rebuild(*, tenant: Tenant, side_connection: bool = False) -> RefreshResult:
    """Recompute every snapshot of the tenant from raw rows and clear its dirty days.

    `side_connection` (PostgreSQL): read the leads, transitions and deals on a second
    connection while this one reads the activities (a fifth less time for a large tenant).
    The other connection cannot see uncommitted rows, so it is used only when the caller's
    transaction has written nothing yet.

    Rows outside the supported date range are left out and their days kept as failed dirty
    days (with the rows named). If the rebuild fails, it is redone day by day as refreshes
    (`_rebuild_by_days`): every day it can compute is, the others stay failed dirty days.
    """
    began = time.perf_counter()
    try:
        with transaction.atomic():
            return _rebuild(tenant, side_connection, began)
    except Exception as error:
        if not _recoverable(error):
            raise
        logger.warning(
            "Rebuild of tenant %s failed (%s); rebuilding it day by day.",
            tenant.pk,
            failures.error_text(error),
            exc_info=True,
        )
    return _rebuild_by_days(tenant, began)


def _forget_all(
    tenant: Tenant, *, snapshots: bool = True
) -> tuple[datetime | None, dict[date, int]]:
    """Drop every snapshot (unless not `snapshots`), membership row and dirty mark of the
    tenant, in the caller's locked transaction. Returns when the rebuild was asked for, and
    the failed attempts of the marks dropped (a day failing again counts on from them)."""
    requested = _rebuild_requested(tenant)
    previous = dict(DirtyDay.objects.filter(attempts__gt=0).values_list("day", "attempts"))
    if snapshots:
        KpiSnapshot.objects.all().delete()
        measure_store.forget()
    DirtyDay.objects.all().delete()
    data_generations.generation_renew(tenant)
    if is_postgres():
        members_sql.forget()
    return requested, previous


def _fail_outside(tenant: Tenant, now: datetime, previous: dict[date, int]) -> list[FailedDay]:
    """Keep the days of the rows outside the supported range as failed dirty days."""
    found = failures.rows_outside(tenant=tenant)
    if not found:
        return []
    errors = failures.outside_errors(found)
    return failures.record_failures(tenant=tenant, errors=errors, now=now, previous=previous)


def _rebuild(tenant: Tenant, side_connection: bool, began: float) -> RefreshResult:
    """kpi_snapshots_rebuild in one set-based pass, in the caller's transaction."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    at = timezone.now()
    statement_timeout_raised()  # NOTE: a large tenant's rebuild outlasts the role's limit
    side_connection = side_connection and is_postgres() and _nothing_written()
    lock_tenant(tenant)
    span = data_day_range(tenant=tenant)
    # PostgreSQL: the stored rows stay; the new ones are computed into a stage and only the
    # difference is written (a rebuild of an unchanged tenant writes no snapshot row).
    staged = is_postgres()
    requested, previous = _forget_all(tenant, snapshots=not staged)
    failed = _fail_outside(tenant, at, previous)
    if span is None:
        written = KpiSnapshot.objects.all().delete()[0] if staged else None
        measure_store.rebuild(tenant=tenant, span=None, zone=zone, at=at)
        _rebuild_done(tenant, requested, at)
        return RefreshResult(0, 0, 0, time.perf_counter() - began, tuple(failed), written=written)
    start, end = span
    days = [start + timedelta(days=n) for n in range((end - start).days)]
    periods = enclosing_periods(days, tenant.fiscal_year_start_month)
    with daily_sql.bulk_settings() if is_postgres() else nullcontext():
        by_grain: dict[Any, Any] = {}
        others = None
        if side_connection:
            with side_connection_work.alongside(
                tenant.pk, lambda: _bulk_other_measures(tenant.pk, start, end, zone)
            ) as side:
                by_grain = _rebuild_activity_measures(tenant, periods, zone)
            try:
                others = side.result()
            except OperationalError:
                # No second connection (the server's connection limit, say): this one
                # reads the other measures after all, below.
                logger.warning(
                    "Rebuild of tenant %s: the side connection failed; reading on one.",
                    tenant.pk,
                    exc_info=True,
                )
        elif is_postgres():
            by_grain = _rebuild_activity_measures(tenant, periods, zone)
        # Every row was deleted above (or goes to an empty stage): the days are inserted
        # without deleting again.
        entries = _day_entries(tenant, [(start, end)], zone, by_grain.get(Grain.DAY), others)
        if staged:
            _stage_create()
        rows = _insert(
            tenant, entries, at, table=rollup_sql.STAGE if staged else rollup_sql.SNAPSHOTS
        )
        distinct = {period: by_grain[period] for period in periods if period in by_grain}
        rows += _write_periods(tenant, periods, zone, at, distinct, staged=staged)
        written = _stage_apply(tenant) if staged else rows
        measure_store.rebuild(tenant=tenant, span=span, zone=zone, at=at)
    # TRICKY: activities added while the rebuild ran may or may not be in its counts
    # (each statement sees what had committed when it began), so the days marked by
    # such writes recount their activities instead of adding the listed ones.
    DirtyDay.objects.filter(added_activities__isnull=False).update(added_activities=None)
    _rebuild_done(tenant, requested, at)
    run_periods_refreshed(tenant.pk, None)
    return RefreshResult(
        len(days), len(periods), rows, time.perf_counter() - began, tuple(failed), written=written
    )


def _stage_create() -> None:
    """An empty stage for a rebuild's rows (PostgreSQL): a temporary table of this
    connection with the snapshot table's columns, dropped by `_stage_apply`."""
    columns = ", ".join(
        ("tenant_id", "computed_at", *rollup_sql.KEY_COLUMNS, *rollup_sql.MEASURE_COLUMNS)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{rollup_sql.STAGE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {rollup_sql.STAGE} AS SELECT {columns} "
            f"FROM {rollup_sql.SNAPSHOTS} WITH NO DATA"
        )


def _stage_apply(tenant: Tenant) -> int:
    """Make the tenant's snapshot rows equal to the stage's, writing only the rows that
    differ, then drop the stage. Returns the rows inserted, updated or deleted."""
    with connection.cursor() as cursor:
        # NOTE: a temporary table has no statistics until analysed: the joins below are
        # planned on its real size (a large tenant stages 100,000s of rows).
        cursor.execute(f"ANALYZE pg_temp.{rollup_sql.STAGE}")
        cursor.execute(rollup_sql.STAGE_APPLY, {"tenant": tenant.pk})
        updated, deleted, inserted = cursor.fetchone()
        cursor.execute(f"DROP TABLE pg_temp.{rollup_sql.STAGE}")
    return updated + deleted + inserted


# A day-by-day rebuild refreshes its days in batches until none is due; a bound all the same.
_REBUILD_BATCHES = 1_000


def _data_days(tenant: Tenant, zone: zoneinfo.ZoneInfo) -> list[date]:
    """Every supported tenant-local day holding a pipeline row or a deal's stage change."""
    lo, hi = failures.supported_instants(zone)
    days: set[date] = set()
    for model, field in (
        (Activity, "occurred_at"),
        (Lead, "created_at"),
        (StageTransition, "at"),
        (Deal, "created_at"),
        (Deal, "closed_at"),
        (DealStageChange, "at"),
    ):
        days.update(
            model.objects.filter(**{f"{field}__gte": lo, f"{field}__lt": hi})
            .annotate(_day=TruncDate(field, tzinfo=zone))
            .values_list("_day", flat=True)
            .order_by()
            .distinct()
        )
    return sorted(days)


def _rebuild_by_days(tenant: Tenant, began: float) -> RefreshResult:
    """A rebuild as refreshes: every snapshot dropped and every day with data marked for a
    recount, then refreshed (in the same transaction) by the path that isolates failing
    days. Slower than the set-based pass, so only used when that failed."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    now = timezone.now()
    days = periods = rows = 0
    with transaction.atomic():
        statement_timeout_raised()
        lock_tenant(tenant)
        requested, previous = _forget_all(tenant)
        DirtyDay.objects.bulk_create(
            [
                DirtyDay(tenant=tenant, day=day, rescan=True, attempts=previous.get(day, 0))
                for day in _data_days(tenant, zone)
            ],
            batch_size=BULK_BATCH,
        )
        failed = _fail_outside(tenant, now, previous)
        _rebuild_done(tenant, requested, now)
        for _ in range(_REBUILD_BATCHES):
            result = kpi_snapshots_refresh_dirty(tenant=tenant)
            days, periods, rows = days + result.days, periods + result.periods, rows + result.rows
            failed += result.failed
            if not result.days and not result.failed:
                break
    return RefreshResult(days, periods, rows, time.perf_counter() - began, tuple(failed))


def _rebuild_requested(tenant: Tenant) -> datetime | None:
    """When the rebuild this one answers was asked for (None: nobody waits for it)."""
    return (
        Tenant.objects.filter(pk=tenant.pk)
        .values_list("kpi_rebuild_requested_at", flat=True)
        .first()
    )


def _rebuild_done(tenant: Tenant, requested: datetime | None, began: datetime) -> None:
    """Clear the tenant's pending mark in the rebuild's own transaction, unless a change
    asked for another rebuild after this one began (that one clears it); and its changed
    mark (the nightly rebuild skips it until a write marks it again), unless a write marked
    it after this rebuild began."""
    if requested is not None:
        Tenant.objects.filter(pk=tenant.pk, kpi_rebuild_requested_at=requested).update(
            kpi_rebuild_requested_at=None
        )
    # NOTE: a write marked before `began` but committed after this rebuild's reads left its
    # dirty days, which the next refresh counts: its tenant needs no rebuild for it.
    Tenant.objects.filter(pk=tenant.pk, kpi_changed_at__lt=began).update(kpi_changed_at=None)


def _rebuild_activity_measures(tenant: Tenant, periods: list[Period], zone) -> dict[Any, Any]:
    """Activity measures of the days (key Grain.DAY) and distinct counts of every coarse
    period (key: Period), from one pass over the activities."""
    by_grain: dict[str, aggregates.Rows] = {}
    daily_sql.activity_measures_by_grain(
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
