"""SQL handoffs to field sales: opened when a lead becomes SQL, accepted or returned (戻し)
within the version's SLA in business hours, with reminder and escalation steps, and the
automatic return of SQLs not turned into a meeting in time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from handoff.assigning import route_lead
from handoff.audit import audit_record
from handoff.measures import first_touch_after, mark_handoff_days
from handoff.models import Handoff, HandoffState, RuleVersion
from handoff.notifying import (
    ACCEPTED,
    CREATED,
    RETURNED,
    SLA_BREACHED,
    SLA_REMINDER,
    handoff_publish,
    managers_of,
)
from handoff.selectors import active_version
from handoff.sla_rules import NOTIFY_MANAGER, REASSIGN, REMIND_OWNER, percent_elapsed
from pipeline.lifecycle import Stage
from pipeline.models import Lead, StageTransition
from pipeline.services import lead_transition
from tenants.bounds import shown, text_check
from tenants.business_hours import BusinessHours
from tenants.calendars import business_hours_for
from tenants.context import tenant_context
from tenants.errors import ErrorCode, PermissionDenied, PublicError, ValidationFailed
from tenants.models import Membership, Tenant
from tenants.scopes import Role

RETURN_NOTE_MAX = 500
# The reason recorded when an SQL is returned for want of a meeting (returnRules.meetingWithinDays).
NO_MEETING_REASON = "noMeetingInTime"
# A deadline of at most 720 business hours (80 working days) falls within a year.
_DEADLINE_DAYS = 370


def _calendar(tenant: Tenant, first: dt.datetime, last: dt.datetime) -> BusinessHours:
    """The tenant's business hours with its days off from `first` to `last` (a day of margin
    each side for time zones)."""
    return business_hours_for(
        tenant, first.date() - dt.timedelta(days=1), last.date() + dt.timedelta(days=2)
    )


def lead_entered_stage(
    *, lead: Lead, transition: StageTransition, version: RuleVersion | None
) -> Handoff | None:
    """What handoff does when a lead becomes MQL or SQL under `version`: route it (when the
    version has routing for the stage) and, for SQL, open the handoff to field sales.
    h1's evaluation and handoff_to_sql call this inside their transaction."""
    if transition.to_stage == Stage.MQL:
        route_lead(lead=lead, stage="mql", version=version, at=transition.at)
        # speed-to-lead counts on the first touch's day, for the MQL assignee
        touch = first_touch_after(lead_id=lead.pk, at=transition.at)
        if touch is not None:
            mark_handoff_days(tenant=lead.tenant_id, datetimes=[touch])
        return None
    if transition.to_stage == Stage.SQL:
        route_lead(lead=lead, stage="sql", version=version, at=transition.at)
        return handoff_open(lead=lead, transition=transition, version=version)
    return None


def handoff_open(
    *, lead: Lead, transition: StageTransition, version: RuleVersion | None
) -> Handoff:
    """The handoff of an SQL transition, awaiting acceptance by the lead's owner; its due
    time is `acceptHours` business hours after the transition (no SLA: no due time). A second
    call for the same transition returns the first handoff."""
    with tenant_context(lead.tenant_id):
        existing = Handoff.objects.filter(transition=transition).first()
        if existing is not None:
            return existing
        tenant = Tenant.objects.get(pk=lead.tenant_id)
        hours = ((version.sla if version is not None else None) or {}).get("acceptHours")
        due_at = None
        if hours:
            due_at = _calendar(
                tenant, transition.at, transition.at + dt.timedelta(days=_DEADLINE_DAYS)
            ).deadline(transition.at, hours)
        owner_id = Lead.objects.filter(pk=lead.pk).values_list("owner_id", flat=True).first()
        try:
            with transaction.atomic():
                handoff = Handoff.objects.create(
                    tenant_id=lead.tenant_id,
                    lead=lead,
                    transition=transition,
                    version=version,
                    owner_id=owner_id,
                    handed_at=transition.at,
                    sla_hours=hours,
                    due_at=due_at,
                )
        except IntegrityError:
            return Handoff.objects.get(transition=transition)
        mark_handoff_days(tenant=tenant, datetimes=[handoff.handed_at])
        handoff_publish(
            tenant=tenant,
            handoff=handoff,
            event_type=CREATED,
            recipients=[owner_id] if owner_id else [],
            dedup="created",
            slaHours=hours,
        )
        audit_record(
            tenant=lead.tenant_id,
            action="handoff.opened",
            version=version,
            lead=lead,
            details={"ownerId": owner_id, "slaHours": hours},
            at=transition.at,
        )
    return handoff


def _sql_owner(handoff: Handoff) -> int | None:
    """The lead's owner when it became SQL (the IS rep who handed it over)."""
    return (
        StageTransition.objects.filter(pk=handoff.transition_id)
        .values_list("owner_id", flat=True)
        .first()
    )


def _may_decide(handoff: Handoff, actor: Membership | None) -> None:
    # NOTE: the owner decides; managers and admins may decide for them (tokens act as the
    # tenant's integration, actor None).
    if actor is not None and actor.tenant_id != handoff.tenant_id:
        raise PermissionDenied("Only the handoff's owner or a manager can accept or return it.")
    if actor is None or actor.pk == handoff.owner_id:
        return
    if actor.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied("Only the handoff's owner or a manager can accept or return it.")


def _locked_awaiting(handoff: Handoff) -> Handoff:
    locked = Handoff.objects.select_for_update().get(pk=handoff.pk)
    if locked.state != HandoffState.AWAITING:
        raise PublicError(
            f"This handoff was {locked.state} already.", code=ErrorCode.CONFLICT, field="id"
        )
    return locked


@transaction.atomic
def handoff_accept(
    *, handoff: Handoff, actor: Membership | None = None, at: dt.datetime | None = None
) -> Handoff:
    """Field sales accept the SQL: the handoff leaves the queue (the lead stays SQL)."""
    at = at or timezone.now()
    with tenant_context(handoff.tenant_id):
        _may_decide(handoff, actor)
        locked = _locked_awaiting(handoff)
        locked.state, locked.accepted_at = HandoffState.ACCEPTED, at
        locked.save(update_fields=["state", "accepted_at"])
        mark_handoff_days(tenant=locked.tenant_id, datetimes=[locked.due_at])
        # The IS rep who owned the lead when it became SQL hears that it was accepted.
        handoff_publish(
            tenant=Tenant.objects.get(pk=locked.tenant_id),
            handoff=locked,
            event_type=ACCEPTED,
            recipients=[pk for pk in (_sql_owner(locked),) if pk is not None],
            dedup="accepted",
            acceptedAt=at.isoformat(),
        )
        audit_record(
            tenant=locked.tenant_id,
            action="handoff.accepted",
            actor=actor,
            version=locked.version,
            lead=locked.lead,
            details={"handoffId": locked.pk},
            at=at,
        )
    return locked


def allowed_return_reasons(version: RuleVersion | None) -> list[str]:
    return list(((version.return_rules if version is not None else None) or {}).get("reasons", []))


@transaction.atomic
def handoff_return(
    *,
    handoff: Handoff,
    reason: str,
    note: str = "",
    actor: Membership | None = None,
    at: dt.datetime | None = None,
) -> Handoff:
    """Field sales return the SQL (戻し) with one of the version's reasons: the lead goes back
    to `recycled` with the reason recorded on its transition. An unknown reason is refused
    with the allowed ones listed, and nothing changes."""
    at = at or timezone.now()
    text_check(note, field="note", max_length=RETURN_NOTE_MAX, what="a note")
    with tenant_context(handoff.tenant_id):
        _may_decide(handoff, actor)
        locked = _locked_awaiting(handoff)
        allowed = allowed_return_reasons(locked.version)
        if reason not in allowed:
            listed = ", ".join(allowed) if allowed else "none are configured"
            raise ValidationFailed(
                f"Unknown return reason {shown(reason)}; allowed: {listed}.", field="reason"
            )
        _return(locked, reason=reason, note=note.strip(), actor=actor, at=at)
    return locked


def _return(
    handoff: Handoff, *, reason: str, note: str, actor: Membership | None, at: dt.datetime
) -> None:
    lead = Lead.objects.get(pk=handoff.lead_id)
    text = f"{reason}: {note}" if note else reason
    transition = lead_transition(
        lead=lead,
        to_stage=Stage.RECYCLED,
        at=at,
        actor=actor,
        actor_label="" if actor is not None else "system",
        reason=text[:500],
    )
    handoff.state, handoff.returned_at = HandoffState.RETURNED, at
    handoff.return_reason, handoff.return_note = reason[:100], note[:500]
    handoff.save(update_fields=["state", "returned_at", "return_reason", "return_note"])
    mark_handoff_days(tenant=handoff.tenant_id, datetimes=[handoff.due_at, at])
    audit_record(
        tenant=handoff.tenant_id,
        action="handoff.returned",
        actor=actor,
        version=handoff.version,
        lead=lead,
        details={"handoffId": handoff.pk, "reason": reason, "transitionId": transition.pk},
        at=at,
    )
    # The IS rep who owned the lead when it became SQL hears that it came back.
    sql_owner = _sql_owner(handoff)
    tenant = Tenant.objects.get(pk=handoff.tenant_id)
    handoff_publish(
        tenant=tenant,
        handoff=handoff,
        event_type=RETURNED,
        recipients=[pk for pk in (sql_owner, handoff.owner_id) if pk is not None],
        dedup="returned",
        reason=reason,
        note=note,
    )


@dataclass
class StepsResult:
    """What one run of the SLA steps did in a tenant."""

    reminded: int = 0
    escalated: int = 0
    reassigned: int = 0
    breached: int = 0


def handoff_sla_steps_run(*, tenant: Tenant, now: dt.datetime | None = None) -> StepsResult:
    """Run the due reminder and escalation steps of the tenant's awaiting handoffs, and mark
    breaches. Idempotent: each step of a handoff runs once (its index is claimed with a
    conditional update before acting), so a second run, or two workers at once, do nothing."""
    now = now or timezone.now()
    result = StepsResult()
    with tenant_context(tenant):
        awaiting = list(
            Handoff.objects.filter(state=HandoffState.AWAITING, sla_hours__isnull=False)
            .select_related("version")
            .order_by("pk")
        )
        if not awaiting:
            return result
        calendar = _calendar(tenant, min(h.handed_at for h in awaiting), now)
        for handoff in awaiting:
            percent = percent_elapsed(
                start=handoff.handed_at, now=now, hours=handoff.sla_hours, calendar=calendar
            )
            with transaction.atomic():
                if percent > 100 and handoff.breached_at is None:
                    claimed = Handoff.objects.filter(
                        pk=handoff.pk, breached_at__isnull=True
                    ).update(breached_at=now)
                    if claimed:
                        handoff.breached_at = now
                        result.breached += 1
                        mark_handoff_days(tenant=tenant, datetimes=[handoff.due_at])
                        handoff_publish(
                            tenant=tenant,
                            handoff=handoff,
                            event_type=SLA_BREACHED,
                            recipients=[
                                *([handoff.owner_id] if handoff.owner_id else []),
                                *managers_of(_member(handoff.owner_id)),
                            ],
                            dedup="breached",
                            percent=int(percent),
                        )
                steps = ((handoff.version.sla if handoff.version else None) or {}).get("steps", [])
                for index, step in enumerate(steps):
                    if index < handoff.step or step["atPercent"] > percent:
                        continue
                    # TRICKY: claim the step before acting: only the run whose update moved
                    # the counter from `index` acts, so a step is never sent twice.
                    if not Handoff.objects.filter(pk=handoff.pk, step=index).update(step=index + 1):
                        break
                    handoff.step = index + 1
                    _run_step(tenant, handoff, step, int(percent), result)
    return result


def _member(pk: int | None) -> Membership | None:
    return None if pk is None else Membership.objects.filter(pk=pk).first()


def _run_step(
    tenant: Tenant, handoff: Handoff, step: dict, percent: int, result: StepsResult
) -> None:
    dedup = f"step{handoff.step - 1}"
    if step["action"] == REMIND_OWNER:
        result.reminded += 1
        handoff_publish(
            tenant=tenant,
            handoff=handoff,
            event_type=SLA_REMINDER,
            recipients=[handoff.owner_id] if handoff.owner_id else [],
            dedup=dedup,
            percent=percent,
        )
    elif step["action"] == NOTIFY_MANAGER:
        result.escalated += 1
        handoff_publish(
            tenant=tenant,
            handoff=handoff,
            event_type=SLA_BREACHED if percent > 100 else SLA_REMINDER,
            recipients=managers_of(_member(handoff.owner_id)),
            dedup=dedup,
            percent=percent,
        )
    elif step["action"] == REASSIGN:
        lead = Lead.objects.get(pk=handoff.lead_id)
        assignment = route_lead(
            lead=lead,
            stage="sql",
            version=handoff.version,
            exclude=frozenset({handoff.owner_id} if handoff.owner_id else ()),
        )
        if assignment is not None and assignment.member_id is not None:
            result.reassigned += 1
            handoff.owner_id = assignment.member_id
            handoff.save(update_fields=["owner"])
            # its facts follow the new owner
            mark_handoff_days(
                tenant=tenant, datetimes=[handoff.handed_at, handoff.due_at, handoff.returned_at]
            )


@dataclass
class ReturnsResult:
    returned: int = 0


def handoff_overdue_returns_run(*, tenant: Tenant, now: dt.datetime | None = None) -> ReturnsResult:
    """Return (戻し) to `recycled` every SQL not turned into a meeting within the active
    version's `returnRules.meetingWithinDays` days of its latest entry into SQL, with the
    reason recorded. Idempotent: a returned lead is no longer SQL."""
    now = now or timezone.now()
    result = ReturnsResult()
    with tenant_context(tenant):
        version = active_version()
        days = ((version.return_rules if version else None) or {}).get("meetingWithinDays")
        if not days:
            return result
        cutoff = now - dt.timedelta(days=days)
        stale = list(
            Lead.objects.filter(stage=Stage.SQL)
            .annotate(entered=Max("transitions__at", filter=Q(transitions__to_stage=Stage.SQL)))
            .filter(entered__lte=cutoff)
            .order_by("pk")
        )
        for lead in stale:
            with transaction.atomic():
                handoff = (
                    Handoff.objects.select_for_update()
                    .filter(lead=lead, state__in=[HandoffState.AWAITING, HandoffState.ACCEPTED])
                    .order_by("-handed_at")
                    .first()
                )
                note = f"no meeting within {days} days"
                if handoff is not None:
                    _return(handoff, reason=NO_MEETING_REASON, note=note, actor=None, at=now)
                else:
                    lead_transition(
                        lead=lead,
                        to_stage=Stage.RECYCLED,
                        at=now,
                        actor_label="system",
                        reason=f"{NO_MEETING_REASON}: {note}",
                    )
                    audit_record(
                        tenant=tenant,
                        action="handoff.returned",
                        version=version,
                        lead=lead,
                        details={"reason": NO_MEETING_REASON},
                        at=now,
                    )
                result.returned += 1
    return result
