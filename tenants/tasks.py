"""Celery tasks of the tenants app (thin: they take ids and call one selector or service)."""

from __future__ import annotations

from celery import shared_task

from tenants.context import tenant_context
from tenants.selectors import workspace_summary


@shared_task(name="tenants.workspace_summary", acks_late=True)
def workspace_summary_task(tenant_id: int) -> dict[str, int]:
    """Counts of a workspace's members, teams and live tokens, read inside its tenant scope."""
    with tenant_context(tenant_id):
        return workspace_summary(tenant_id=tenant_id)
