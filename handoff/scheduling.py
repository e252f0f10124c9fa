"""When handoff evaluates a tenant: after its records arrive (pipeline.hooks listener)."""

from __future__ import annotations

from tenants.task_queue import enqueue


def handoff_records_arrived(tenant_id: int) -> None:
    """Queue the tenant's evaluation; pipeline calls this after the batch committed."""
    enqueue("handoff.evaluate_tenant", tenant_id)
