"""Full rebuilds: every snapshot of a tenant recomputed from raw rows in one set-based pass
(on PostgreSQL into a stage, then only the rows that differ written), or, when that pass
fails, redone day by day as refreshes.

Separate from `refresh`, which it falls back on: a rebuild drops and recomputes everything a
tenant has (its marks, members and measure rows too) and answers the pending rebuild mark.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models.functions import TruncDate
from django.utils import timezone

from kpis import data_generations, failures, measure_store
from kpis import side_connection as side_connection_work
from kpis.failures import FailedDay
from kpis.hooks import run_periods_refreshed
from kpis.models import KpiSnapshot
from kpis.periods import Grain
from kpis.snapshots import daily_sql, measuring, members_sql, rollup_sql, writing
from kpis.snapshots.common import (
    RefreshResult,
    data_day_range,
    enclosing_periods,
    is_postgres,
    lock_tenant,
    recoverable,
)
from kpis.snapshots.refresh import kpi_snapshots_refresh_dirty
from pipeline.models import Activity, Deal, DealStageChange, DirtyDay, Lead, StageTransition
from tenants.context import statement_timeout_raised
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def _nothing_written() -> bool:
    """Whether this connection's transaction has written nothing yet (PostgreSQL), so that
    another connection sees the same committed rows."""
    with connection.cursor() as cursor:
        # A transaction is given an id at its first write.
        cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NULL")
        return cursor.fetchone()[0]


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
        if not recoverable(error):
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
                tenant.pk, lambda: measuring.bulk_other_measures(tenant.pk, start, end, zone)
            ) as side:
                by_grain = measuring.rebuild_activity_measures(tenant, periods, zone)
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
            by_grain = measuring.rebuild_activity_measures(tenant, periods, zone)
        # Every row was deleted above (or goes to an empty stage): the days are inserted
        # without deleting again.
        entries = writing.day_entries(tenant, [(start, end)], zone, by_grain.get(Grain.DAY), others)
        if staged:
            _stage_create()
        rows = writing.insert(
            tenant, entries, at, table=rollup_sql.STAGE if staged else rollup_sql.SNAPSHOTS
        )
        distinct = {period: by_grain[period] for period in periods if period in by_grain}
        rows += writing.write_periods(tenant, periods, zone, at, distinct, staged=staged)
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
            batch_size=writing.BULK_BATCH,
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
