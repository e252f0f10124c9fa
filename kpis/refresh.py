"""Scheduling snapshot refreshes: one queued refresh per tenant, however many writes arrive;
and a rebuild when a rep moves to another team or a team is deleted (team numbers follow
the rep's current team), or when the tenant's time zone or fiscal-year start changes (every
row then belongs to other days and periods)."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction

QUEUED_TTL_SECONDS = 30


def _queued_key(tenant_id: int) -> str:
    return f"kpis:refresh-queued:{tenant_id}"


def _queue_once(key: str, task: Any, tenant_id: int) -> bool:
    """Queue `task` for the tenant unless the flag `key` says one is queued, not started."""
    # NOTE: the flag expires on its own so a lost task cannot block the next one for long;
    # the periodic sweep and the nightly rebuild pick up whatever a lost task left.
    if not cache.add(key, 1, timeout=QUEUED_TTL_SECONDS):
        return False
    task.delay(tenant_id)
    return True


def kpi_refresh_schedule(tenant_id: int) -> bool:
    """Queue a dirty-day refresh of the tenant unless one is queued and not yet started.

    Called after commit of every write that marked days dirty. Returns whether it queued.
    """
    from kpis.tasks import refresh_tenant_task

    return _queue_once(_queued_key(tenant_id), refresh_tenant_task, tenant_id)


def kpi_refresh_started(tenant_id: int) -> None:
    """Clear the queued flag as a refresh starts: writes from now on queue a new one."""
    cache.delete(_queued_key(tenant_id))


def _rebuild_key(tenant_id: int) -> str:
    return f"kpis:rebuild-queued:{tenant_id}"


def kpi_rebuild_schedule(tenant_id: int) -> bool:
    """Queue a full rebuild of the tenant unless one is queued and not yet started.

    A rep's activities, leads and deals count for the rep's current team, so moving a rep
    re-attributes the rep's whole history: only a rebuild recounts it.
    """
    from kpis.tasks import rebuild_tenant_task

    return _queue_once(_rebuild_key(tenant_id), rebuild_tenant_task, tenant_id)


def kpi_rebuild_started(tenant_id: int) -> None:
    """Clear the queued flag as a rebuild starts: team moves from now on queue a new one."""
    cache.delete(_rebuild_key(tenant_id))


def membership_team_watch(sender: Any, instance: Any, **kwargs: Any) -> None:
    """pre_save of a Membership: remember the team it had, to see a move after the save."""
    previous = None
    if instance.pk is not None:
        previous = (
            sender.all_tenants.filter(pk=instance.pk).values_list("team_id", flat=True).first()
        )
    instance._kpi_previous_team_id = previous


def membership_team_moved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """post_save of a Membership: after commit, rebuild its tenant when a rep changed team."""
    if created or getattr(instance, "_kpi_previous_team_id", None) == instance.team_id:
        return
    tenant_id = instance.tenant_id
    transaction.on_commit(lambda: kpi_rebuild_schedule(tenant_id))


def team_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """post_delete of a Team: after commit, rebuild its tenant.

    Its reps and leads lose their team in a bulk update that sends no Membership signals;
    their history then counts for no team, and the team's own rows must go.
    """
    tenant_id = instance.tenant_id
    transaction.on_commit(lambda: kpi_rebuild_schedule(tenant_id))


_CALENDAR_FIELDS = ("timezone", "fiscal_year_start_month")


def tenant_calendar_watch(sender: Any, instance: Any, **kwargs: Any) -> None:
    """pre_save of a Tenant: remember its time zone and fiscal-year start."""
    fields = kwargs.get("update_fields")
    previous = None
    if instance.pk is not None and (fields is None or set(fields) & set(_CALENDAR_FIELDS)):
        previous = sender.objects.filter(pk=instance.pk).values_list(*_CALENDAR_FIELDS).first()
    instance._kpi_previous_calendar = previous


def tenant_calendar_changed(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """post_save of a Tenant: after commit, rebuild it when its time zone or fiscal-year
    start changed: a day is a local day and a quarter a fiscal one, so every snapshot row
    and every membership row is keyed by the old calendar."""
    previous = getattr(instance, "_kpi_previous_calendar", None)
    if created or previous is None:
        return
    if tuple(previous) == tuple(getattr(instance, name) for name in _CALENDAR_FIELDS):
        return
    tenant_id = instance.pk
    transaction.on_commit(lambda: kpi_rebuild_schedule(tenant_id))
