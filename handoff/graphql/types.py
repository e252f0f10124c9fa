"""GraphQL types of handoff rule sets, versions, approvals, audit entries and dry runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from handoff.models import (
    Approval,
    ApprovalSide,
    AuditEntry,
    Qualification,
    RuleSet,
    RuleVersion,
    VersionStatus,
)
from handoff.qualification import DryRun

RULE_SET, VERSION, MEMBER, LEAD = "HandoffRuleSet", "HandoffRuleVersion", "Membership", "Lead"

VersionStatusEnum = strawberry.enum(
    VersionStatus, name="HandoffVersionStatus", description="draft → approved → active → retired."
)
ApprovalSideEnum = strawberry.enum(ApprovalSide, name="HandoffApprovalSide")


def gid(type_name: str, pk: Any) -> strawberry.ID | None:
    return None if pk is None else strawberry.ID(relay.to_base64(type_name, pk))


@strawberry.type(name="HandoffApproval", description="One side's agreement (合意) to a version.")
class ApprovalType:
    side: ApprovalSideEnum  # type: ignore[valid-type]
    member_id: strawberry.ID | None
    member_name: str
    at: datetime

    @classmethod
    def of(cls, approval: Approval) -> ApprovalType:
        member = approval.member
        name = ""
        if member is not None:
            name = member.display_name or member.user.get_username()
        return cls(
            side=ApprovalSide(approval.side),
            member_id=gid(MEMBER, approval.member_id),
            member_name=name,
            at=approval.at,
        )


@strawberry.type(
    name="HandoffRuleVersion",
    description="A numbered version of a rule set: MQL conditions, SQL requirements, SLA, "
    "return rules and routing (JSON, schemas in docs/handoff.md).",
)
class RuleVersionType:
    id: strawberry.ID
    rule_set_id: strawberry.ID
    number: int
    status: VersionStatusEnum  # type: ignore[valid-type]
    mql_conditions: JSON
    sql_requirements: JSON
    sla: JSON
    return_rules: JSON
    routing: JSON
    created_by_id: strawberry.ID | None
    created_at: datetime
    approved_at: datetime | None
    activated_at: datetime | None
    retired_at: datetime | None
    approvals: list[ApprovalType]

    @classmethod
    def of(cls, version: RuleVersion) -> RuleVersionType:
        return cls(
            id=gid(VERSION, version.pk),  # type: ignore[arg-type]
            rule_set_id=gid(RULE_SET, version.rule_set_id),  # type: ignore[arg-type]
            number=version.number,
            status=VersionStatus(version.status),
            mql_conditions=version.mql_conditions,
            sql_requirements=version.sql_requirements,
            sla=version.sla,
            return_rules=version.return_rules,
            routing=version.routing,
            created_by_id=gid(MEMBER, version.created_by_id),
            created_at=version.created_at,
            approved_at=version.approved_at,
            activated_at=version.activated_at,
            retired_at=version.retired_at,
            approvals=[ApprovalType.of(a) for a in version.approvals.all()],
        )


@strawberry.type(name="HandoffRuleSet", description="引き渡しルール: a family of versions.")
class RuleSetType:
    id: strawberry.ID
    name: str
    description: str
    created_at: datetime
    versions: list[RuleVersionType] = strawberry.field(description="Newest first.")

    @classmethod
    def of(cls, rule_set: RuleSet, versions: list[RuleVersion]) -> RuleSetType:
        return cls(
            id=gid(RULE_SET, rule_set.pk),  # type: ignore[arg-type]
            name=rule_set.name,
            description=rule_set.description,
            created_at=rule_set.created_at,
            versions=[RuleVersionType.of(v) for v in versions],
        )


@strawberry.type(name="HandoffRuleSetPage")
class RuleSetPage:
    total_count: int
    items: list[RuleSetType]


@strawberry.type(name="HandoffAuditEntry", description="Who did what, to which version or lead.")
class AuditEntryType:
    id: strawberry.ID
    at: datetime
    action: str
    actor_id: strawberry.ID | None
    actor_label: str
    version_id: strawberry.ID | None
    lead_id: strawberry.ID | None
    details: JSON

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryType:
        return cls(
            id=gid("HandoffAuditEntry", entry.pk),  # type: ignore[arg-type]
            at=entry.at,
            action=entry.action,
            actor_id=gid(MEMBER, entry.actor_id),
            actor_label=entry.actor_label,
            version_id=gid(VERSION, entry.version_id),
            lead_id=gid(LEAD, entry.lead_id),
            details=entry.details,
        )


@strawberry.type(name="HandoffAuditPage")
class AuditPage:
    total_count: int
    items: list[AuditEntryType]


@strawberry.type(name="HandoffVerdict", description="A lead a version qualifies, and why.")
class VerdictType:
    lead_id: strawberry.ID
    score: int | None
    reasons: JSON


@strawberry.type(
    name="HandoffDryRun",
    description="What a version would qualify now among leads in `lead` or `recycled`, "
    "against the active version. Lists hold at most 200 ids; counts are exact.",
)
class DryRunType:
    qualified_count: int
    qualified: list[VerdictType]
    newly_qualified_count: int
    newly_qualified_lead_ids: list[strawberry.ID]
    no_longer_qualified_count: int
    no_longer_qualified_lead_ids: list[strawberry.ID]
    active_version_id: strawberry.ID | None

    @classmethod
    def of(cls, run: DryRun) -> DryRunType:
        def lead(pk: int) -> strawberry.ID:
            return gid(LEAD, pk)  # type: ignore[return-value]

        return cls(
            qualified_count=run.qualified_count,
            qualified=[
                VerdictType(
                    lead_id=lead(pk),
                    score=run.verdicts[pk].score,
                    reasons=run.verdicts[pk].reasons,
                )
                for pk in run.qualified
            ],
            newly_qualified_count=run.newly_qualified_count,
            newly_qualified_lead_ids=[lead(pk) for pk in run.newly_qualified],
            no_longer_qualified_count=run.no_longer_qualified_count,
            no_longer_qualified_lead_ids=[lead(pk) for pk in run.no_longer_qualified],
            active_version_id=gid(VERSION, run.active_version_id),
        )


@strawberry.type(name="HandoffQualification", description="A lead qualified under a version.")
class QualificationType:
    id: strawberry.ID
    lead_id: strawberry.ID
    version_id: strawberry.ID
    stage: str
    score: int | None
    reasons: JSON
    at: datetime

    @classmethod
    def of(cls, qualification: Qualification) -> QualificationType:
        return cls(
            id=gid("HandoffQualification", qualification.pk),  # type: ignore[arg-type]
            lead_id=gid(LEAD, qualification.lead_id),  # type: ignore[arg-type]
            version_id=gid(VERSION, qualification.version_id),  # type: ignore[arg-type]
            stage=qualification.stage,
            score=qualification.score,
            reasons=qualification.reasons,
            at=qualification.at,
        )
