"""Qualifying leads: MQL by the active version's conditions, SQL by handoff, and dry runs.

Leads move only through pipeline's lifecycle service (`lead_transition`), which locks the
lead row and refuses a move from a stage that no longer allows it; each move records a
Qualification naming the version and the reasons, and an audit entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from handoff.audit import actor_label_of, audit_record
from handoff.conditions import ATTRIBUTE_KEY, parse_conditions
from handoff.evaluation import Verdict, activity_filter, qualifying_leads
from handoff.handoffs import lead_entered_stage
from handoff.models import AuditEntry, Qualification, QualificationStage, RuleVersion
from handoff.requirements import parse_requirements
from handoff.selectors import active_version
from handoff.services import lock_tenant_handoff
from pipeline.lifecycle import Stage, is_allowed
from pipeline.models import Activity, Lead
from pipeline.services import lead_transition, lead_update
from tenants.bounds import text_check
from tenants.errors import ErrorCode, NotFound, PublicError, ValidationFailed
from tenants.models import Membership, Tenant

SYSTEM = "system"
MAX_INFO_FIELDS = 20
MAX_INFO_VALUE = 500
DRY_RUN_LIST = 200  # lead ids listed per group of a dry run; the counts are exact


@dataclass
class EvaluationResult:
    version_id: int | None
    moved: list[int] = field(default_factory=list)


def _reason_text(version: RuleVersion) -> str:
    return f"Handoff rule {version.rule_set.name[:150]} v{version.number}"


def handoff_evaluate(*, tenant: Tenant, now: dt.datetime | None = None) -> EvaluationResult:
    """Move every candidate lead the active version's MQL conditions qualify now to `mql`.

    Idempotent: a second run (or one racing the first: the tenant's handoff lock
    serialises them, and the lead row lock of lead_transition guards each move) finds the
    moved leads no longer candidates and moves nobody twice.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lock_tenant_handoff(tenant.pk)
        version = active_version()
        if version is None:
            return EvaluationResult(version_id=None)
        verdicts = qualifying_leads(parse_conditions(version.mql_conditions), now=now)
        result = EvaluationResult(version_id=version.pk)
        if not verdicts:
            return result
        leads = Lead.objects.select_related("tenant").in_bulk([v.lead_id for v in verdicts])
        qualifications: list[Qualification] = []
        entries: list[AuditEntry] = []
        for verdict in verdicts:
            lead = leads.get(verdict.lead_id)
            if lead is None:
                continue
            try:
                with transaction.atomic():
                    transition = lead_transition(
                        lead=lead,
                        to_stage=Stage.MQL,
                        at=now,
                        actor_label=SYSTEM,
                        reason=_reason_text(version),
                    )
                    # routing (when the version has it for mql), in the same transaction
                    lead_entered_stage(lead=lead, transition=transition, version=version)
            except PublicError:
                # NOTE: moved meanwhile, or its history runs past `now` (a future-dated
                # import): not this evaluation's lead to move.
                continue
            result.moved.append(lead.pk)
            qualifications.append(_qualification(tenant, lead, version, transition, verdict, now))
            entries.append(
                AuditEntry(
                    tenant=tenant,
                    actor_label=SYSTEM,
                    action="lead_qualified_mql",
                    version=version,
                    lead=lead,
                    details={"score": verdict.score, "reasons": verdict.reasons},
                    at=now,
                )
            )
        Qualification.objects.bulk_create(qualifications)
        AuditEntry.objects.bulk_create(entries)
    return result


def _qualification(
    tenant: Tenant,
    lead: Lead,
    version: RuleVersion,
    transition: Any,
    verdict: Verdict,
    now: dt.datetime,
) -> Qualification:
    return Qualification(
        tenant=tenant,
        lead=lead,
        version=version,
        transition=transition,
        stage=QualificationStage.MQL,
        score=verdict.score,
        reasons=verdict.reasons,
        at=now,
    )


@dataclass(frozen=True)
class DryRun:
    """What a version would qualify now, against the active version's verdicts."""

    qualified: list[int]
    qualified_count: int
    newly_qualified: list[int]
    newly_qualified_count: int
    no_longer_qualified: list[int]
    no_longer_qualified_count: int
    active_version_id: int | None
    verdicts: dict[int, Verdict]


def handoff_dry_run(
    *, tenant: Tenant, version: RuleVersion, now: dt.datetime | None = None
) -> DryRun:
    """Which candidate leads `version` (typically a draft) would qualify now, and the
    difference with the active version: newly qualified, no longer qualified. Changes
    nothing; two queries besides the active version's."""
    if version.tenant_id != tenant.pk:
        raise NotFound("Rule version", field="id")
    now = now or timezone.now()
    draft = qualifying_leads(parse_conditions(version.mql_conditions), now=now)
    active = active_version()
    current: list[Verdict] = []
    if active is not None and active.pk != version.pk:
        current = qualifying_leads(parse_conditions(active.mql_conditions), now=now)
    elif active is not None:
        current = draft
    draft_ids = [v.lead_id for v in draft]
    current_ids = {v.lead_id for v in current}
    newly = [pk for pk in draft_ids if pk not in current_ids]
    draft_set = set(draft_ids)
    gone = sorted(pk for pk in current_ids if pk not in draft_set)
    return DryRun(
        qualified=draft_ids[:DRY_RUN_LIST],
        qualified_count=len(draft_ids),
        newly_qualified=newly[:DRY_RUN_LIST],
        newly_qualified_count=len(newly),
        no_longer_qualified=gone[:DRY_RUN_LIST],
        no_longer_qualified_count=len(gone),
        active_version_id=None if active is None else active.pk,
        verdicts={v.lead_id: v for v in draft[:DRY_RUN_LIST]},
    )


class RequirementsMissing(PublicError):
    """A handoff to SQL refused: `missing` lists every requirement not met."""

    code = ErrorCode.VALIDATION

    def __init__(self, missing: list[str]):
        super().__init__(
            "Handoff to SQL refused; missing: " + ", ".join(missing) + ".", field="info"
        )
        self.missing = missing


def _check_info(info: dict[str, Any]) -> dict[str, str]:
    if not isinstance(info, dict):
        raise ValidationFailed("info must be an object.", field="info")
    if len(info) > MAX_INFO_FIELDS:
        raise ValidationFailed(f"info has at most {MAX_INFO_FIELDS} fields.", field="info")
    checked: dict[str, str] = {}
    for key, value in info.items():
        if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
            raise ValidationFailed(
                "info keys are 1-64 letters, digits, '_' or '-', starting with a letter.",
                field="info",
            )
        if not isinstance(value, str):
            raise ValidationFailed(f"info.{key} must be a text.", field=f"info.{key}")
        checked[key] = text_check(value, field=f"info.{key}", max_length=MAX_INFO_VALUE).strip()
    return checked


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


def handoff_to_sql(
    *,
    tenant: Tenant,
    lead: Lead,
    actor: Membership | None,
    info: dict[str, Any],
    actor_label: str = "",
    now: dt.datetime | None = None,
) -> Qualification:
    """Hand a lead over to field sales (`sql`) under the active version's requirements.

    `info` holds the qualification fields that accompany the handoff (kept in the lead's
    attributes). Refused with RequirementsMissing listing every requirement not met (the
    required activity, each required field empty in both info and the lead's attributes);
    nothing changes then.
    """
    if lead.tenant_id != tenant.pk:
        raise NotFound("Lead", field="leadId")
    if actor is not None and actor.tenant_id != tenant.pk:
        raise NotFound("Member", field="actor")
    fields = _check_info(info)
    now = now or timezone.now()
    version = active_version()
    if version is None:
        raise PublicError(
            "No handoff rule version is active: agree and activate one first.",
            code=ErrorCode.CONFLICT,
        )
    requirements = parse_requirements(version.sql_requirements)
    if not is_allowed(lead.stage, Stage.SQL):
        raise PublicError(
            f"A lead cannot move from {lead.stage!r} to 'sql'.",
            code=ErrorCode.INVALID_TRANSITION,
            field="leadId",
        )
    missing: list[str] = []
    met: list[dict[str, str]] = []
    wanted = requirements.activity
    if wanted is not None:
        window = Q(occurred_at__lte=now)
        if wanted.days is not None:
            window &= Q(occurred_at__gte=now - dt.timedelta(days=wanted.days))
        done = Activity.objects.filter(window, lead=lead, **activity_filter(wanted.activity))
        label = f"activity:{wanted.activity}"
        if done.count() >= wanted.at_least:
            met.append({"requirement": label})
        else:
            missing.append(label)
    attributes = lead.attributes if isinstance(lead.attributes, dict) else {}
    for key in requirements.required_fields:
        if _present(fields.get(key)) or _present(attributes.get(key)):
            met.append({"requirement": f"field:{key}"})
        else:
            missing.append(f"field:{key}")
    if missing:
        raise RequirementsMissing(missing)
    given = {key: value for key, value in fields.items() if value}
    with transaction.atomic():
        if given:
            lead = lead_update(lead=lead, attributes={**attributes, **given})
        transition = lead_transition(
            lead=lead,
            to_stage=Stage.SQL,
            at=now,
            actor=actor,
            actor_label=actor_label or actor_label_of(actor),
            reason=_reason_text(version),
        )
        # routing (when the version has it for sql), then the handoff awaiting acceptance
        lead_entered_stage(lead=lead, transition=transition, version=version)
        qualification = Qualification.objects.create(
            tenant=tenant,
            lead=lead,
            version=version,
            transition=transition,
            stage=QualificationStage.SQL,
            reasons=met,
            at=now,
        )
        audit_record(
            tenant=tenant,
            action="lead_handed_to_sql",
            actor=actor,
            actor_label=actor_label,
            version=version,
            lead=lead,
            details={"info": given, "met": [m["requirement"] for m in met]},
            at=now,
        )
    return qualification
