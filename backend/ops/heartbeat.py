"""The worker heartbeat: a beat-scheduled task stamps the cache; readiness reads the stamp."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache

HEARTBEAT_KEY = "ops:worker-heartbeat"
# Kept well past any sensible max age, so a stale stamp reads as stale rather than missing.
_HEARTBEAT_TTL_SECONDS = 24 * 3600


def heartbeat_write(*, at: float | None = None) -> float:
    """Record that a worker ran a task now (seconds since the epoch)."""
    stamp = time.time() if at is None else at
    cache.set(HEARTBEAT_KEY, stamp, timeout=_HEARTBEAT_TTL_SECONDS)
    return stamp


def heartbeat_age() -> float | None:
    """Seconds since the latest heartbeat, or None if none was ever seen."""
    stamp = cache.get(HEARTBEAT_KEY)
    return None if stamp is None else max(0.0, time.time() - float(stamp))


@shared_task(name="ops.worker_heartbeat", ignore_result=True)
def worker_heartbeat_task() -> None:
    """Run by beat every HEALTH_HEARTBEAT_INTERVAL seconds: beat, broker and a worker are
    all alive when the stamp is fresh."""
    heartbeat_write()
