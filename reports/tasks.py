"""Celery tasks of the reports app: the hourly fan-out and one tenant's due reports."""

from __future__ import annotations

from celery import shared_task

from reports.generation import reports_generate_due
from tenants.context import tenant_context
from tenants.models import Tenant


@shared_task(
    name="reports.generate_due_for_tenant",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=600,
    time_limit=660,
)
def generate_due_for_tenant_task(tenant_id: int) -> dict[str, int]:
    """Generate the tenant's due reports (idempotent: a second run creates nothing)."""
    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None:
            return {"tenant_id": tenant_id, "created": 0}
        created = reports_generate_due(tenant=tenant)
    return {"tenant_id": tenant_id, "created": len(created)}


@shared_task(name="reports.generate_due_all", acks_late=True)
def generate_due_all_task() -> list[int]:
    """Hourly: each tenant's reports fall due at its own local midnight."""
    # NOTE: Tenant is not tenant-owned: listing the workspaces needs no cross-tenant scope.
    tenant_ids = list(
        Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    for tenant_id in tenant_ids:
        generate_due_for_tenant_task.delay(tenant_id)
    return tenant_ids
