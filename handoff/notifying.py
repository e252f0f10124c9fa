"""Telling people about handoffs: the handoff event types (registered with notifications,
with their messages in Japanese and English) and their publication."""

# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry import relay

from handoff.models import Assignment, Handoff
from notifications.events import Channel, EventTypeSpec, Message, register_event_type
from notifications.services import EventDraft, events_publish
from pipeline.models import Lead
from tenants.context import tenant_context
from tenants.models import Membership, Tenant
from tenants.scopes import Role

ASSIGNED = "handoff.assigned"
SLA_REMINDER = "handoff.sla_reminder"
SLA_BREACHED = "handoff.sla_breached"
RETURNED = "handoff.returned"
CREATED = "handoff.created"
ACCEPTED = "handoff.accepted"
SPEED_TO_LEAD_REMINDER = "handoff.speed_to_lead_reminder"
CHANNELS = (Channel.IN_APP, Channel.EMAIL, Channel.WEBHOOK)

_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        ASSIGNED: "リードが割り当てられました（{stage}）: {company}",
        SLA_REMINDER: "リマインド: {company} の受け入れ期限が近づいています（{percent}%経過）",
        SLA_BREACHED: "SLA超過: {company} の受け入れ期限を過ぎました（{percent}%経過）",
        RETURNED: "戻し: {company} がナーチャリングに戻されました（理由: {reason}）",
        CREATED: "SQL引き渡し: {company} の受け入れをお願いします",
        ACCEPTED: "受け入れ: {company} がフィールドセールスに受け入れられました",
        SPEED_TO_LEAD_REMINDER: (
            "初回接触の遅れ: {company} に架電・メールがありません（SLAの{percent}%経過）"
        ),
        "due": "期限: {due}",
        "owner": "担当: {owner}",
        "reason": "割り当て理由: {strategy}",
        "note": "メモ: {note}",
    },
    "en": {
        ASSIGNED: "Lead assigned ({stage}): {company}",
        SLA_REMINDER: "Reminder: {company} waits for acceptance ({percent}% of the SLA used)",
        SLA_BREACHED: "SLA breached: {company} was not accepted in time ({percent}% used)",
        RETURNED: "Returned: {company} went back to nurture (reason: {reason})",
        CREATED: "SQL handed over: {company} awaits your acceptance",
        ACCEPTED: "Accepted: field sales accepted {company}",
        SPEED_TO_LEAD_REMINDER: (
            "Speed to lead: {company} has not been called or e-mailed ({percent}% of the SLA used)"
        ),
        "due": "Due: {due}",
        "owner": "Owner: {owner}",
        "reason": "Assigned by: {strategy}",
        "note": "Note: {note}",
    },
}


def _renderer(key: str):  # type: ignore[no-untyped-def]
    def render(payload: dict[str, Any], language: str) -> Message:
        words = _TEXTS.get(language, _TEXTS["en"])
        title = words[key].format(
            stage=str(payload.get("stage", "")).upper(),
            company=payload.get("company", ""),
            percent=payload.get("percent", ""),
            reason=payload.get("reason", ""),
        )
        lines = []
        if payload.get("ownerName"):
            lines.append(words["owner"].format(owner=payload["ownerName"]))
        if payload.get("dueAt"):
            lines.append(words["due"].format(due=payload["dueAt"]))
        if payload.get("strategy"):
            lines.append(words["reason"].format(strategy=payload["strategy"]))
        if payload.get("note"):
            lines.append(words["note"].format(note=payload["note"]))
        return Message(title=title, lines=lines)

    return render


def handoff_event_types_register() -> None:
    """Called from HandoffConfig.ready."""
    for key, en, ja in (
        (ASSIGNED, "Lead assigned", "リード割り当て"),
        (SLA_REMINDER, "Handoff SLA reminder", "引き渡しSLAリマインド"),
        (SLA_BREACHED, "Handoff SLA breached", "引き渡しSLA超過"),
        (RETURNED, "Handoff returned", "引き渡し戻し"),
        (CREATED, "SQL handed over", "SQL引き渡し"),
        (ACCEPTED, "Handoff accepted", "引き渡し受け入れ"),
        (SPEED_TO_LEAD_REMINDER, "Speed-to-lead reminder", "初回接触リマインド"),
    ):
        register_event_type(EventTypeSpec(key, en, ja, _renderer(key)))


def _name(member: Membership | None) -> str | None:
    if member is None:
        return None
    return member.display_name or member.user.username


def _lead_payload(lead: Lead) -> dict[str, Any]:
    return {"leadId": relay.to_base64("Lead", lead.pk), "company": lead.company}


def managers_of(member: Membership | None) -> list[int]:
    """The active managers of the member's team (every active manager when it has none)."""
    managers = Membership.objects.filter(role=Role.MANAGER, is_active=True)
    if member is not None and member.team_id is not None:
        managers = managers.filter(team_id=member.team_id)
    return list(managers.values_list("pk", flat=True))


def assignment_publish(*, tenant: Tenant, assignment: Assignment) -> None:
    """Tell the member who received a lead (none when nobody could take it)."""
    if assignment.member_id is None:
        return
    with tenant_context(tenant):
        member = Membership.objects.select_related("user").get(pk=assignment.member_id)
        lead = Lead.objects.get(pk=assignment.lead_id)
        payload = _lead_payload(lead) | {
            "stage": assignment.stage,
            "ownerName": _name(member),
            "strategy": assignment.reason.get("strategy"),
            "assignmentReason": assignment.reason,
        }
        events_publish(
            tenant=tenant,
            drafts=[
                EventDraft(
                    ASSIGNED, payload, [member.pk], list(CHANNELS), f"{ASSIGNED}:{assignment.pk}"
                )
            ],
        )


def handoff_publish(
    *,
    tenant: Tenant,
    handoff: Handoff,
    event_type: str,
    recipients: Sequence[int],
    dedup: str,
    **extra: Any,
) -> None:
    """Publish one handoff event once (the dedup key names the handoff and the step). With
    no recipient it is still published: webhooks subscribed to its type receive it."""
    lead = Lead.objects.get(pk=handoff.lead_id)
    owner = (
        None
        if handoff.owner_id is None
        else Membership.objects.select_related("user").get(pk=handoff.owner_id)
    )
    payload = (
        _lead_payload(lead)
        | {
            "handoffId": relay.to_base64("Handoff", handoff.pk),
            "ownerName": _name(owner),
            "dueAt": None if handoff.due_at is None else handoff.due_at.isoformat(),
        }
        | extra
    )
    events_publish(
        tenant=tenant,
        drafts=[
            EventDraft(
                event_type,
                payload,
                sorted(set(recipients)),
                list(CHANNELS),
                f"{event_type}:{handoff.pk}:{dedup}",
            )
        ],
    )
