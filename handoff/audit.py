"""The handoff audit trail: one service every handoff change writes its entry through."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from handoff.models import AuditEntry, RuleVersion
from pipeline.models import Lead
from tenants.models import Membership, Tenant

SYSTEM = "system"


def actor_label_of(actor: Membership | None) -> str:
    """How an entry names its actor: the member's username, or 'system' for evaluation."""
    if actor is None:
        return SYSTEM
    user = getattr(actor, "user", None)
    return (getattr(user, "username", "") or f"member {actor.pk}")[:150]


def audit_record(
    *,
    tenant: Tenant | int,
    action: str,
    actor: Membership | None = None,
    actor_label: str = "",
    version: RuleVersion | None = None,
    lead: Lead | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Record who (a member, or the label of a token or 'system') did `action`, to which
    version or lead, with what details. Call it inside the change's transaction so the
    entry and the change commit or roll back together."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return AuditEntry.objects.create(
        tenant_id=tenant_id,
        actor=actor,
        actor_label=(actor_label or actor_label_of(actor))[:150],
        action=action[:50],
        version=version,
        lead=lead,
        details=details or {},
        at=at or timezone.now(),
    )
