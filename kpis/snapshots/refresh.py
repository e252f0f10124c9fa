"""Dirty-day refreshes: the days marked dirty by writes (or named by a caller) recomputed
with every coarser period containing them, the failing days isolated.

A refresh replaces, in one transaction, the day rows of the dirty days and the rows of every
coarser period containing them; readers see the old or the new snapshot, never half of one.
The DirtyDay rows it handled are deleted in the same transaction, so a worker killed
mid-refresh leaves them dirty and the next refresh redoes them; the same transaction draws
the tenant's data generation anew (kpis.data_generations), which caches of raw-row results
key on.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import date, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kpis import data_generations, failures, measure_store
from kpis.hooks import run_periods_refreshed
from kpis.snapshots import daily_sql, members_sql, writing
from kpis.snapshots.common import (
    DayChange,
    RefreshResult,
    data_day_range,
    day_ranges,
    enclosing_periods,
    is_postgres,
    lock_tenant,
    recoverable,
)
from pipeline.models import DirtyDay, DirtyKind
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Beyond this many listed (added) activities in one refresh, its days are recounted instead.
MAX_LISTED_PER_REFRESH = 20_000


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
            rows = writing.write_days(tenant, day_ranges(days), zone, at) if days else 0
            rows += writing.write_periods(tenant, periods, zone, at, {})
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
            entries = writing.changed_day_entries(
                tenant, days, changes, zone, activities, added_days
            )
            rows = writing.write_periods(tenant, periods, zone, at, distinct, days=(days, entries))
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
        if not recoverable(error):
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
                if not recoverable(error):
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
