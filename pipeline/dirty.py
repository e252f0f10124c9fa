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


def mark_days_dirty(
    *, tenant: Tenant, datetimes: Iterable[datetime | None], rescan: bool = False
) -> None:
    """Insert a DirtyDay row for each tenant-local day of `datetimes` (None values skipped).

    Every datetime must be aware; it is converted to `tenant.timezone` before taking the date.
    `rescan` says rows were changed or re-attributed rather than only added (see DirtyDay).
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
        [DirtyDay(tenant=tenant, day=day, rescan=rescan) for day in sorted(days)],
        ignore_conflicts=True,
    )
    if rescan:  # a day already dirty for added rows now needs the recount as well
        DirtyDay.objects.filter(day__in=days, rescan=False).update(rescan=True)
    notify_days_dirty(tenant.pk)


def mark_lead_history_dirty(*, tenant: Tenant, lead_ids: Iterable[int]) -> None:
    """Mark for a recount every day on which the leads have a row whose attribution follows
    the lead (its source, and its owner for leads created and deals): after a lead changed
    source or owner. Five set-based queries, whatever the number of leads.
    """
    from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition

    lead_ids = list(set(lead_ids))
    if not lead_ids:
        return
    moments: list[datetime | None] = []
    for queryset, fields in (
        (Lead.objects.filter(pk__in=lead_ids), ("created_at",)),
        (Activity.objects.filter(lead_id__in=lead_ids), ("occurred_at",)),
        (StageTransition.objects.filter(lead_id__in=lead_ids), ("at",)),
        (Deal.objects.filter(lead_id__in=lead_ids), ("created_at", "closed_at")),
        (DealStageChange.objects.filter(deal__lead_id__in=lead_ids), ("at",)),
    ):
        for row in queryset.values_list(*fields):
            moments.extend(row)
    mark_days_dirty(tenant=tenant, datetimes=moments, rescan=True)
