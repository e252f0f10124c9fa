"""Queueing alert evaluations: once per tenant however many refreshes commit meanwhile."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.core.cache import cache

from tenants.task_queue import enqueue

QUEUED_TTL_SECONDS = 30


def _queued_key(tenant_id: int) -> str:
    return f"alerts:evaluate-queued:{tenant_id}"


def alerts_evaluation_schedule(tenant_id: int) -> bool:
    """Queue an evaluation of the tenant unless one is queued and not yet started."""
    # NOTE: as kpis.snapshots.scheduling's flag: it expires on its own, so a lost task
    # blocks nothing for long, and the 15-minute beat evaluates every tenant anyway.
    if not cache.add(_queued_key(tenant_id), 1, timeout=QUEUED_TTL_SECONDS):
        return False
    enqueue("alerts.evaluate_tenant", tenant_id)
    return True


def alerts_evaluation_started(tenant_id: int) -> None:
    """Clear the queued flag as an evaluation starts: refreshes from now on queue anew."""
    cache.delete(_queued_key(tenant_id))


def alerts_periods_refreshed(tenant_id: int, days: Iterable[date] | None) -> None:
    """kpis.hooks listener, run after a refresh or rebuild commits: evaluate the tenant.

    Every rule judges the current and previous period of its grain, which any refreshed
    day may be in (a backfill of last month too), so the days only say that one happened.
    """
    alerts_evaluation_schedule(tenant_id)
