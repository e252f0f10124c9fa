"""Handoff rule sets and versions: drafts, agreement (合意), activation and retirement.

Every change writes an audit entry in its own transaction. A version moves
draft → approved (both sides agreed) → active → retired; only a draft is edited, and a
change to a draft withdraws the approvals it had, so what is activated is what both sides
approved. One version across the tenant is active at a time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from handoff.audit import audit_record
from handoff.measures import speed_to_lead_start
from handoff.models import Approval, ApprovalSide, RuleSet, RuleVersion, VersionStatus
from handoff.validation import PARTS, validate_parts
from tenants.bounds import text_check
from tenants.errors import ErrorCode, NotFound, PermissionDenied, PublicError
from tenants.models import Membership, Tenant
from tenants.scopes import Role

# Any constant works; the second key is the tenant id. Held by activation and by
# evaluation, so an evaluation never reads a version that is being replaced.
_ADVISORY_LOCK_CLASS = 0x4A0D0F
NAME_MAX = 200
DESCRIPTION_MAX = 2000

# Which side a member's role approves for: marketing, or sales (field sales or a manager).
SIDE_OF_ROLE: dict[str, str] = {
    Role.MARKETING: ApprovalSide.MARKETING,
    Role.FIELD_SALES: ApprovalSide.SALES,
    Role.MANAGER: ApprovalSide.SALES,
}


def lock_tenant_handoff(tenant_id: int) -> None:
    """Serialise activation and evaluation of one tenant until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_LOCK_CLASS, tenant_id]
            )


def _same_tenant(obj: Any, tenant: Tenant, *, what: str, field: str) -> None:
    # Another tenant's row is "not found", exactly like a missing one.
    if obj is not None and obj.tenant_id != tenant.pk:
        raise NotFound(what, field=field)


def _conflict(message: str, field: str | None = None) -> PublicError:
    return PublicError(message, code=ErrorCode.CONFLICT, field=field)


def rule_set_create(
    *,
    tenant: Tenant,
    name: str,
    description: str = "",
    actor: Membership | None = None,
    actor_label: str = "",
) -> RuleSet:
    """A new, empty rule set (its versions are created as drafts)."""
    _same_tenant(actor, tenant, what="Member", field="actor")
    name = text_check(name, field="name", max_length=NAME_MAX, required=True).strip()
    description = text_check(description, field="description", max_length=DESCRIPTION_MAX)
    taken = _conflict(f"A rule set named {name!r} already exists.", field="name")
    with transaction.atomic():
        if RuleSet.objects.filter(name=name).exists():
            raise taken
        try:
            # NOTE: a savepoint: a create racing this one passes the check above too, and the
            # unique (tenant, name) constraint decides; the loser gets CONFLICT, not a 500.
            with transaction.atomic():
                rule_set = RuleSet.objects.create(tenant=tenant, name=name, description=description)
        except IntegrityError as exc:
            raise taken from exc
        if not RuleSet.objects.exclude(pk=rule_set.pk).exists():
            speed_to_lead_start(tenant)
        audit_record(
            tenant=tenant,
            action="rule_set_created",
            actor=actor,
            actor_label=actor_label,
            details={"ruleSet": rule_set.pk, "name": name},
        )
    return rule_set


def _next_number(rule_set: RuleSet) -> int:
    # The rule set row lock makes two drafts created at once take different numbers.
    RuleSet.objects.select_for_update().filter(pk=rule_set.pk).first()
    last = RuleVersion.objects.filter(rule_set=rule_set).aggregate(n=Max("number"))["n"]
    return (last or 0) + 1


def rule_version_create(
    *,
    tenant: Tenant,
    rule_set: RuleSet,
    parts: dict[str, Any],
    actor: Membership | None = None,
    actor_label: str = "",
) -> RuleVersion:
    """A new draft of `rule_set` with the given parts (model field names of PARTS)."""
    _same_tenant(rule_set, tenant, what="Rule set", field="ruleSetId")
    _same_tenant(actor, tenant, what="Member", field="actor")
    values = validate_parts(parts)
    with transaction.atomic():
        version = RuleVersion.objects.create(
            tenant=tenant,
            rule_set=rule_set,
            number=_next_number(rule_set),
            created_by=actor,
            **values,
        )
        audit_record(
            tenant=tenant,
            action="version_created",
            actor=actor,
            actor_label=actor_label,
            version=version,
            details={"number": version.number, "parts": _shown_parts(values)},
        )
    return version


def _shown_parts(values: dict[str, Any]) -> dict[str, Any]:
    return {PARTS[name]: value for name, value in values.items()}


def _locked(version: RuleVersion) -> RuleVersion:
    return RuleVersion.objects.select_for_update().get(pk=version.pk)


def rule_version_update(
    *,
    tenant: Tenant,
    version: RuleVersion,
    parts: dict[str, Any],
    actor: Membership | None = None,
    actor_label: str = "",
) -> RuleVersion:
    """Change a draft's parts. An approved, active or retired version is refused (copy it
    into a new draft); the approvals a draft had are withdrawn, since it changed."""
    _same_tenant(version, tenant, what="Rule version", field="id")
    _same_tenant(actor, tenant, what="Member", field="actor")
    values = validate_parts(parts)
    with transaction.atomic():
        locked = _locked(version)
        if locked.status != VersionStatus.DRAFT:
            raise _conflict(
                f"Version {locked.number} is {locked.status}: only a draft can be edited; "
                "copy it into a new draft (ruleVersionCopy).",
                field="id",
            )
        before = {PARTS[name]: getattr(locked, name) for name in values}
        for name, value in values.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(values))
        withdrawn = list(
            Approval.objects.filter(version=locked).order_by("side").values_list("side", flat=True)
        )
        Approval.objects.filter(version=locked).delete()
        audit_record(
            tenant=tenant,
            action="version_updated",
            actor=actor,
            actor_label=actor_label,
            version=locked,
            details={
                "before": before,
                "after": _shown_parts(values),
                "approvalsWithdrawn": withdrawn,
            },
        )
    return locked


def rule_version_copy(
    *,
    tenant: Tenant,
    version: RuleVersion,
    actor: Membership | None = None,
    actor_label: str = "",
) -> RuleVersion:
    """A new draft of the same rule set holding a copy of `version`'s parts."""
    _same_tenant(version, tenant, what="Rule version", field="id")
    _same_tenant(actor, tenant, what="Member", field="actor")
    with transaction.atomic():
        copy = RuleVersion.objects.create(
            tenant=tenant,
            rule_set_id=version.rule_set_id,
            number=_next_number(version.rule_set),
            created_by=actor,
            **{name: getattr(version, name) for name in PARTS},
        )
        audit_record(
            tenant=tenant,
            action="version_copied",
            actor=actor,
            actor_label=actor_label,
            version=copy,
            details={"from": version.pk, "fromNumber": version.number, "number": copy.number},
        )
    return copy


def rule_version_approve(
    *,
    tenant: Tenant,
    version: RuleVersion,
    member: Membership | None,
    at: dt.datetime | None = None,
) -> RuleVersion:
    """`member` agrees to a draft for their side: a `marketing` member for marketing, a
    `field_sales` or `manager` member for sales. Once both sides agreed the version is
    approved (not yet active: activation is its own step)."""
    _same_tenant(version, tenant, what="Rule version", field="id")
    if member is None:
        raise PermissionDenied("Only a member of the workspace can approve a rule version.")
    _same_tenant(member, tenant, what="Member", field="memberId")
    side = SIDE_OF_ROLE.get(member.role)
    if side is None or not member.is_active:
        raise PermissionDenied(
            "A rule version is approved by an active marketing member, and by an active "
            "field_sales or manager member."
        )
    at = at or timezone.now()
    with transaction.atomic():
        locked = _locked(version)
        if locked.status != VersionStatus.DRAFT:
            raise _conflict(f"Version {locked.number} is {locked.status}, not a draft.", "id")
        if Approval.objects.filter(version=locked, side=side).exists():
            raise _conflict(f"The {side} side has already approved this version.", "id")
        Approval.objects.create(tenant=tenant, version=locked, member=member, side=side, at=at)
        audit_record(
            tenant=tenant,
            action="version_approved",
            actor=member,
            version=locked,
            at=at,
            details={"side": side, "role": member.role},
        )
        sides = set(Approval.objects.filter(version=locked).values_list("side", flat=True))
        if sides == set(ApprovalSide.values):
            locked.status = VersionStatus.APPROVED
            locked.approved_at = at
            locked.save(update_fields=["status", "approved_at"])
            audit_record(
                tenant=tenant,
                action="version_agreed",
                actor=member,
                version=locked,
                at=at,
                details={"sides": sorted(sides)},
            )
    return locked


def rule_version_activate(
    *,
    tenant: Tenant,
    version: RuleVersion,
    actor: Membership | None = None,
    actor_label: str = "",
    at: dt.datetime | None = None,
) -> RuleVersion:
    """Make an approved version the tenant's active one; the version active before (of any
    rule set) is retired at the same instant, so activation intervals never overlap."""
    _same_tenant(version, tenant, what="Rule version", field="id")
    _same_tenant(actor, tenant, what="Member", field="actor")
    at = at or timezone.now()
    with transaction.atomic():
        lock_tenant_handoff(tenant.pk)
        locked = _locked(version)
        if locked.status != VersionStatus.APPROVED:
            raise _conflict(
                f"Version {locked.number} is {locked.status}: only a version both marketing "
                "and sales approved can be activated.",
                field="id",
            )
        previous = (
            RuleVersion.objects.select_for_update().filter(status=VersionStatus.ACTIVE).first()
        )
        if previous is not None:
            previous.status = VersionStatus.RETIRED
            previous.retired_at = at
            previous.save(update_fields=["status", "retired_at"])
            audit_record(
                tenant=tenant,
                action="version_retired",
                actor=actor,
                actor_label=actor_label,
                version=previous,
                at=at,
                details={"replacedBy": locked.pk},
            )
        locked.status = VersionStatus.ACTIVE
        locked.activated_at = at
        locked.save(update_fields=["status", "activated_at"])
        audit_record(
            tenant=tenant,
            action="version_activated",
            actor=actor,
            actor_label=actor_label,
            version=locked,
            at=at,
            details={"previous": None if previous is None else previous.pk},
        )
    return locked


def rule_version_retire(
    *,
    tenant: Tenant,
    version: RuleVersion,
    actor: Membership | None = None,
    actor_label: str = "",
    at: dt.datetime | None = None,
) -> RuleVersion:
    """Retire a version for good (an active one leaves the tenant with no active version)."""
    _same_tenant(version, tenant, what="Rule version", field="id")
    _same_tenant(actor, tenant, what="Member", field="actor")
    at = at or timezone.now()
    with transaction.atomic():
        lock_tenant_handoff(tenant.pk)
        locked = _locked(version)
        if locked.status == VersionStatus.RETIRED:
            raise _conflict(f"Version {locked.number} is already retired.", field="id")
        was = locked.status
        locked.status = VersionStatus.RETIRED
        locked.retired_at = at
        locked.save(update_fields=["status", "retired_at"])
        audit_record(
            tenant=tenant,
            action="version_retired",
            actor=actor,
            actor_label=actor_label,
            version=locked,
            at=at,
            details={"was": was},
        )
    return locked
