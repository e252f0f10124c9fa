"""Celery tasks of handoff: qualify one tenant's leads; run its SLA steps and overdue returns;
and the periodic fan-outs of both (queue `default`)."""

from __future__ import annotations

from celery import shared_task

from handoff.handoffs import handoff_overdue_returns_run, handoff_sla_steps_run
from handoff.qualification import handoff_evaluate
from handoff.speed_reminders import speed_to_lead_reminders_run
from tenants.context import tenant_context
from tenants.models import Tenant


@shared_task(
    name="handoff.evaluate_tenant",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=330,
)
def evaluate_tenant_task(tenant_id: int) -> dict[str, int]:
    """Move the leads the active version qualifies to mql (idempotent: a second run, even
    one racing this one, moves nobody twice)."""
    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:  # deleted or switched off since the task was queued
            return {"tenant_id": tenant_id, "moved": 0}
        result = handoff_evaluate(tenant=tenant)
    return {"tenant_id": tenant_id, "moved": len(result.moved)}


@shared_task(name="handoff.evaluate_all", acks_late=True)
def evaluate_all_task() -> list[int]:
    """Periodically: behaviour windows move with the clock, not only with new records."""
    # NOTE: Tenant is not tenant-owned: listing the workspaces needs no cross-tenant scope.
    tenant_ids = list(
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    for tenant_id in tenant_ids:
        evaluate_tenant_task.delay(tenant_id)
    return tenant_ids


@shared_task(
    name="handoff.sla_tenant",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
)
def handoff_sla_tenant_task(tenant_id: int) -> dict[str, int]:
    """Run due reminder/escalation steps, speed-to-lead reminders and overdue returns
    (idempotent: steps are claimed once, reminders are deduplicated per MQL entry, a
    returned lead is no longer SQL)."""
    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:
            return {"tenant_id": tenant_id}
        steps = handoff_sla_steps_run(tenant=tenant)
        speed = speed_to_lead_reminders_run(tenant=tenant)
        returns = handoff_overdue_returns_run(tenant=tenant)
    return {
        "tenant_id": tenant_id,
        "reminded": steps.reminded,
        "escalated": steps.escalated,
        "reassigned": steps.reassigned,
        "breached": steps.breached,
        "speed_reminded": speed.reminded,
        "speed_escalated": speed.escalated,
        "returned": returns.returned,
    }


@shared_task(name="handoff.sla_all", acks_late=True)
def handoff_sla_all_task() -> list[int]:
    """Every 5 minutes: SLA clocks move with business hours, not with data."""
    tenant_ids = list(
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    for tenant_id in tenant_ids:
        handoff_sla_tenant_task.delay(tenant_id)
    return tenant_ids
