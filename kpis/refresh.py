"""Scheduling snapshot refreshes: one queued refresh per tenant, however many writes arrive."""

from __future__ import annotations

from django.core.cache import cache

QUEUED_TTL_SECONDS = 30


def _queued_key(tenant_id: int) -> str:
    return f"kpis:refresh-queued:{tenant_id}"


def kpi_refresh_schedule(tenant_id: int) -> bool:
    """Queue a dirty-day refresh of the tenant unless one is queued and not yet started.

    Called after commit of every write that marked days dirty. Returns whether it queued.
    """
    from kpis.tasks import refresh_tenant_task

    # NOTE: the flag expires on its own so a lost task cannot block refreshes for long; the
    # periodic sweep picks up whatever a lost task left dirty.
    if not cache.add(_queued_key(tenant_id), 1, timeout=QUEUED_TTL_SECONDS):
        return False
    refresh_tenant_task.delay(tenant_id)
    return True


def kpi_refresh_started(tenant_id: int) -> None:
    """Clear the queued flag as a refresh starts: writes from now on queue a new one."""
    cache.delete(_queued_key(tenant_id))
