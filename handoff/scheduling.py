"""When handoff evaluates a tenant: after its records arrive (pipeline.hooks listener)."""

from __future__ import annotations


def handoff_records_arrived(tenant_id: int) -> None:
    """Queue the tenant's evaluation; pipeline calls this after the batch committed."""
    from handoff.tasks import evaluate_tenant_task

    evaluate_tenant_task.delay(tenant_id)
