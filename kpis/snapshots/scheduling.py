"""Scheduling snapshot refreshes: one queued refresh per tenant, however many writes arrive;
and a rebuild when the tenant's time zone or fiscal-year start changes (every row then
belongs to other days and periods), or when a deal stage's meaning changes. A rep's team
move, and a team's deletion, mark only the days they cover (pipeline.team_moves)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from kpis.versions import kpi_read_version_bump
from tenants.task_queue import enqueue

QUEUED_TTL_SECONDS = 30


def _queued_key(tenant_id: int) -> str:
    return f"kpis:refresh-queued:{tenant_id}"


def _queue_once(key: str, task_name: str, tenant_id: int) -> bool:
    """Queue the task for the tenant unless the flag `key` says one is queued, not started."""
    # NOTE: the flag expires on its own so a lost task cannot block the next one for long;
    # the periodic sweep and the nightly rebuild pick up whatever a lost task left.
    if not cache.add(key, 1, timeout=QUEUED_TTL_SECONDS):
        return False
    enqueue(task_name, tenant_id)
    return True


def kpi_refresh_schedule(tenant_id: int) -> bool:
    """Queue a dirty-day refresh of the tenant unless one is queued and not yet started.

    Called after commit of every write that marked days dirty. Returns whether it queued.
    """
    return _queue_once(_queued_key(tenant_id), "kpis.refresh_tenant", tenant_id)


def kpi_refresh_started(tenant_id: int) -> None:
    """Clear the queued flag as a refresh starts: writes from now on queue a new one."""
    cache.delete(_queued_key(tenant_id))


def _rebuild_key(tenant_id: int) -> str:
    return f"kpis:rebuild-queued:{tenant_id}"


def kpi_rebuild_schedule(tenant_id: int) -> bool:
    """Queue a full rebuild of the tenant unless one is queued and not yet started.

    A new calendar or a stage's new meaning re-date or re-value every row: only a rebuild
    recounts them.
    """
    return _queue_once(_rebuild_key(tenant_id), "kpis.rebuild_tenant", tenant_id)


def kpi_rebuild_request(tenant_id: int) -> None:
    """Within the caller's transaction, mark the tenant's numbers as waiting for a rebuild
    (every value reads as pending until the rebuild that clears the mark commits), and queue
    the rebuild once the transaction commits."""
    from tenants.models import Tenant

    Tenant.objects.filter(pk=tenant_id).update(kpi_rebuild_requested_at=timezone.now())
    kpi_read_version_bump(tenant_id)  # every value now reads as pending
    transaction.on_commit(lambda: kpi_rebuild_schedule(tenant_id))


def kpi_rebuild_started(tenant_id: int) -> None:
    """Clear the queued flag as a rebuild starts: changes from now on queue a new one."""
    cache.delete(_rebuild_key(tenant_id))


class RebuildOnChange:
    """pre_save and post_save receivers that rebuild a tenant's snapshots after commit when a
    saved row changed one of `fields` (a new row changes nothing counted yet)."""

    def __init__(self, fields: tuple[str, ...], tenant_of: Callable[[Any], int]) -> None:
        self.fields = fields
        self.tenant_of = tenant_of
        self.attribute = "_kpi_before_" + "_".join(fields)
        # update_fields names a foreign key by its field name (team), values() by its column
        self.names = {name.removesuffix("_id") for name in fields} | set(fields)

    def remember(self, sender: Any, instance: Any, **kwargs: Any) -> None:
        """pre_save: the stored values of the fields, unless the save cannot change them."""
        update_fields = kwargs.get("update_fields")
        before = None
        if instance.pk is not None and (update_fields is None or set(update_fields) & self.names):
            before = sender._base_manager.filter(pk=instance.pk).values_list(*self.fields).first()
        setattr(instance, self.attribute, before)

    def compare(self, sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        """post_save: queue the rebuild after commit when a field changed."""
        before = getattr(instance, self.attribute, None)
        if created or before is None:
            return
        if tuple(before) == tuple(getattr(instance, name) for name in self.fields):
            return
        kpi_rebuild_request(self.tenant_of(instance))


# A day is a local day and a quarter a fiscal one: every snapshot and membership row is
# keyed by the tenant's calendar.
TENANT_CALENDAR = RebuildOnChange(("timezone", "fiscal_year_start_month"), lambda t: t.pk)
# The weighted pipeline and won deals read a deal's stage: its win probability and flags.
DEAL_STAGE_MEANING = RebuildOnChange(
    ("win_probability", "is_won", "is_lost"), lambda stage: stage.tenant_id
)
