"""Reading handoff rules: the active version (now or at an instant), pages, the audit trail."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from handoff.models import Approval, AuditEntry, Qualification, RuleSet, RuleVersion, VersionStatus
from tenants.errors import ValidationFailed

MAX_PAGE = 100


def check_page(first: int, offset: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed(f"first must be 1 to {MAX_PAGE}.", field="first")
    if offset < 0:
        raise ValidationFailed("offset cannot be negative.", field="offset")


def active_version() -> RuleVersion | None:
    """The tenant's active version (at most one, by a partial unique constraint)."""
    return (
        RuleVersion.objects.filter(status=VersionStatus.ACTIVE).select_related("rule_set").first()
    )


def active_version_at(instant: dt.datetime) -> RuleVersion | None:
    """The version that was active at `instant`, from the activation intervals
    [activated_at, retired_at): activation retires the previous version at the same
    instant, so at most one interval holds it."""
    return (
        RuleVersion.objects.filter(activated_at__isnull=False, activated_at__lte=instant)
        .filter(Q(retired_at__isnull=True) | Q(retired_at__gt=instant))
        .select_related("rule_set")
        .order_by("-activated_at", "-pk")
        .first()
    )


def rule_sets_page(*, first: int, offset: int) -> tuple[list[RuleSet], int]:
    check_page(first, offset)
    rule_sets = RuleSet.objects.order_by("name", "pk")
    return list(rule_sets[offset : offset + first]), rule_sets.count()


def versions_of(rule_set_ids: list[int]) -> dict[int, list[RuleVersion]]:
    """Each rule set's versions, newest first, with their approvals: two queries."""
    found: dict[int, list[RuleVersion]] = {pk: [] for pk in rule_set_ids}
    versions = (
        RuleVersion.objects.filter(rule_set_id__in=rule_set_ids)
        .prefetch_related(approvals_prefetch())
        .order_by("rule_set_id", "-number")
    )
    for version in versions:
        found[version.rule_set_id].append(version)
    return found


def approvals_prefetch() -> object:
    from django.db.models import Prefetch

    return Prefetch(
        "approvals",
        queryset=Approval.objects.select_related("member__user").order_by("at", "pk"),
    )


def audit_page(
    *,
    first: int,
    offset: int,
    version: RuleVersion | None = None,
    lead_id: int | None = None,
) -> tuple[list[AuditEntry], int]:
    """Audit entries, latest first, optionally of one version or lead."""
    check_page(first, offset)
    entries: QuerySet[AuditEntry] = AuditEntry.objects.all()
    if version is not None:
        entries = entries.filter(version=version)
    if lead_id is not None:
        entries = entries.filter(lead_id=lead_id)
    page = entries.order_by("-at", "-pk")[offset : offset + first]
    return list(page), entries.count()


def qualifications_of_lead(lead_id: int) -> list[Qualification]:
    return list(Qualification.objects.filter(lead_id=lead_id).order_by("at", "pk"))
