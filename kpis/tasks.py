"""Celery tasks of the KPI app: dirty-day refreshes, the periodic sweep and full rebuilds."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from kpis.snapshots import (
    kpi_snapshots_rebuild,
    kpi_snapshots_refresh_dirty,
    kpi_snapshots_warm,
)
from kpis.snapshots.scheduling import (
    kpi_rebuild_schedule,
    kpi_rebuild_started,
    kpi_refresh_schedule,
    kpi_refresh_started,
)
from pipeline.cross_tenant import tenants_with_dirty_days
from pipeline.statistics import analyze_stale_tables
from tenants.context import tenant_context
from tenants.models import Tenant

MAX_PASSES = 20


@shared_task(name="kpis.refresh_tenant", acks_late=True, reject_on_worker_lost=True)
def refresh_tenant_task(tenant_id: int) -> dict[str, int]:
    """Refresh the tenant's due dirty days until none is left (idempotent: safe to run
    twice). Days that fail are recorded and left for their retry (the sweep queues it)."""
    kpi_refresh_started(tenant_id)
    # NOTE: no statistics upkeep here: it runs on the bulk queue (pipeline.statistics), so a
    # tenant's refresh never waits for the ANALYZE of another tenant's bulk load.
    days = failed = 0
    for _ in range(MAX_PASSES):
        with tenant_context(tenant_id):
            tenant = Tenant.objects.filter(pk=tenant_id).first()
            if tenant is None:  # deleted since the task was queued
                break
            result = kpi_snapshots_refresh_dirty(tenant=tenant)
        days += result.days
        failed += len(result.failed)
        # A failed day waits for its retry time: the next pass takes the days after it.
        if not result.days and not result.failed:
            break
    return {"tenant_id": tenant_id, "days": days, "failed": failed}


@shared_task(name="kpis.refresh_dirty_sweep", acks_late=True)
def refresh_dirty_sweep_task() -> list[int]:
    """Queue a refresh for every tenant with dirty days due now (catches lost refresh tasks
    and retries failed days once their time comes), once per tenant."""
    # Ids only, through a narrow function: the app role cannot read several tenants.
    tenant_ids = tenants_with_dirty_days()
    # NOTE: through the once-per-tenant guard: a refresh still queued is not queued again.
    return [tenant_id for tenant_id in tenant_ids if kpi_refresh_schedule(tenant_id)]


@shared_task(name="kpis.rebuild_tenant", acks_late=True, reject_on_worker_lost=True)
def rebuild_tenant_task(tenant_id: int) -> dict[str, int]:
    """Recompute the tenant's snapshots from raw rows, then prepare its open periods."""
    kpi_rebuild_started(tenant_id)
    # On the bulk queue: a rebuild right after a large import is what stale statistics
    # slow down most (minutes instead of a second), and no refresh waits for it here.
    analyze_stale_tables()
    with tenant_context(tenant_id):
        tenant = Tenant.objects.get(pk=tenant_id)
        result = kpi_snapshots_rebuild(tenant=tenant, side_connection=True)
    with tenant_context(tenant_id):
        warmed = kpi_snapshots_warm(tenant=tenant)
    return {"tenant_id": tenant_id, "days": result.days, "rows": result.rows, "warmed": warmed}


# The local weekday on which every tenant is rebuilt, changed or not (Monday).
WEEKLY_FULL_REBUILD_WEEKDAY = 0


def _tenants_in_their_rebuild_hour(*, now: dt.datetime) -> list[tuple[int, dt.date]]:
    """(tenant id, local date) of the active tenants for which `now` falls in the nightly
    rebuild hour (KPI_NIGHTLY_REBUILD_HOUR) of their own time zone."""
    hour = settings.KPI_NIGHTLY_REBUILD_HOUR
    due = []
    # The Tenant table is not tenant-owned; each rebuild runs in its tenant's context.
    for tenant_id, zone_name in Tenant.objects.filter(is_active=True).values_list("pk", "timezone"):
        local = now.astimezone(ZoneInfo(zone_name))
        if local.hour == hour:
            due.append((tenant_id, local.date()))
    return sorted(due)


@shared_task(name="kpis.rebuild_all", acks_late=True)
def rebuild_all_task(now: str | None = None, force: bool = False) -> list[int]:
    """Hourly: queue a full rebuild (bulk queue) of each tenant for which it is now the
    nightly rebuild hour in its own time zone and whose data a write marked since its last
    rebuild, or that waits for one; on its local Monday (or with `force`) whatever changed.

    The rebuild corrects what incremental refreshes cannot see: an edit below the services
    (raw SQL), which no change marker sees either, is corrected by the weekly run (or
    `rebuild_kpi_snapshots`). `now` (ISO 8601) is for tests and replays. Idempotent: a
    tenant is queued at most once per local night, however often this runs (a redelivered
    task, a repeated hour when clocks go back), and not while a rebuild of it is queued.
    Returns the tenants queued.
    """
    moment = dt.datetime.fromisoformat(now) if now else timezone.now()
    due = _tenants_in_their_rebuild_hour(now=moment)
    changed = set(
        Tenant.objects.filter(
            Q(kpi_changed_at__isnull=False) | Q(kpi_rebuild_requested_at__isnull=False),
            pk__in=[tenant_id for tenant_id, _ in due],
        ).values_list("pk", flat=True)
    )
    queued = []
    for tenant_id, local_day in due:
        weekly = force or local_day.weekday() == WEEKLY_FULL_REBUILD_WEEKDAY
        if not (weekly or tenant_id in changed):
            continue
        # NOTE: the night's key is kept two days: long enough to outlive the local night in
        # any time zone. Then the once-per-tenant guard: a rebuild still queued is not
        # queued again.
        night = f"kpis:nightly-rebuild:{tenant_id}:{local_day}"
        if cache.add(night, 1, timeout=48 * 3600) and kpi_rebuild_schedule(tenant_id):
            queued.append(tenant_id)
    return queued
