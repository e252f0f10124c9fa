"""Celery tasks of the alerts app: evaluate one tenant, and the 15-minute fan-out."""

from __future__ import annotations

from celery import shared_task

from alerts.evaluation import alerts_evaluate
from alerts.scheduling import alerts_evaluation_schedule, alerts_evaluation_started
from tenants.context import tenant_context
from tenants.models import Tenant


@shared_task(
    name="alerts.evaluate_tenant",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
)
def evaluate_tenant_task(tenant_id: int) -> dict[str, int]:
    """Judge the tenant's rules now (idempotent: a second run changes nothing)."""
    alerts_evaluation_started(tenant_id)
    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:  # deleted or switched off since the task was queued
            return {"tenant_id": tenant_id, "rules": 0}
        result = alerts_evaluate(tenant=tenant)
    return {
        "tenant_id": tenant_id,
        "rules": result.rules,
        "fired": len(result.fired),
        "resolved": len(result.resolved),
    }


@shared_task(name="alerts.evaluate_all", acks_late=True)
def evaluate_all_task() -> list[int]:
    """Every 15 minutes: pace and silence move with the clock, not only with data."""
    # NOTE: Tenant is not tenant-owned: listing the workspaces needs no cross-tenant scope.
    tenant_ids = list(
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    for tenant_id in tenant_ids:
        alerts_evaluation_schedule(tenant_id)
    return tenant_ids
