"""Marking the tenant-local days touched by a write, so their KPI snapshots are recomputed."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from pipeline.models import DirtyDay
from tenants.models import Tenant

DirtyListener = Callable[[int], None]
_listeners: list[DirtyListener] = []


def register_dirty_listener(listener: DirtyListener) -> DirtyListener:
    """Call `listener(tenant_id)` after the commit of a transaction that marked days dirty.

    The KPI app registers its snapshot refresh here; pipeline imports no KPI code.
    """
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def notify_days_dirty(tenant_id: int) -> None:
    """Tell the listeners, on commit, that `tenant_id` has dirty days (for bulk writers)."""
    for listener in _listeners:
        transaction.on_commit(lambda listener=listener: listener(tenant_id))


def mark_days_dirty(*, tenant: Tenant, datetimes: Iterable[datetime | None]) -> None:
    """Insert a DirtyDay row for each tenant-local day of `datetimes` (None values skipped).

    Every datetime must be aware; it is converted to `tenant.timezone` before taking the date.
    """
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    days = set()
    for moment in datetimes:
        if moment is None:
            continue
        if timezone.is_naive(moment):
            raise ValueError(f"mark_days_dirty needs aware datetimes, got {moment!r}.")
        days.add(moment.astimezone(zone).date())
    if not days:
        return
    # NOTE: marked_at is refreshed only on insert; a day already dirty stays as it was,
    # which is enough for the snapshot worker (it recomputes every dirty day).
    DirtyDay.objects.bulk_create(
        [DirtyDay(tenant=tenant, day=day) for day in sorted(days)],
        ignore_conflicts=True,
    )
    notify_days_dirty(tenant.pk)
