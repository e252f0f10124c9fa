"""Speed-to-lead reminders: an MQL not called or e-mailed within the active version's
`speedToLeadHours` business hours reminds its owner, and past twice that its team's managers,
each once per entry into `mql` (the event's dedup key names the transition, so a second run,
or a second worker, sends nothing again). Run by the same 5-minute beat as the accept SLA's
steps (`handoff.sla_tenant`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from strawberry import relay

from handoff.measures import TOUCHES
from handoff.notifying import CHANNELS, SPEED_TO_LEAD_REMINDER, managers_of
from handoff.selectors import active_version
from notifications.services import EventDraft, events_publish
from pipeline.lifecycle import Stage
from pipeline.models import Activity, Lead, StageTransition
from tenants.business_hours import LOOKBACK_DAYS
from tenants.calendars import business_hours_for
from tenants.context import tenant_context
from tenants.models import Membership, Tenant

# Past these shares of the SLA (more than N business hours, as a breach is defined): the
# owner, then the managers.
OWNER_PERCENT = 100
MANAGER_PERCENT = 200


@dataclass
class SpeedRemindersResult:
    reminded: int = 0
    escalated: int = 0


def _open_clocks(now: dt.datetime) -> list[tuple[int, int, dt.datetime, Lead]]:
    """(transition id, lead id, entered at, lead) of the leads still in `mql` whose latest
    entry into it (within the lookback) has no call or e-mail since."""
    horizon = now - dt.timedelta(days=LOOKBACK_DAYS)
    leads = {
        lead.pk: lead
        for lead in Lead.objects.filter(stage=Stage.MQL).only("pk", "company", "owner_id")
    }
    if not leads:
        return []
    latest: dict[int, tuple[int, dt.datetime]] = {}
    for pk, lead_id, at in (
        StageTransition.objects.filter(
            to_stage=Stage.MQL, lead__stage=Stage.MQL, at__gte=horizon, at__lte=now
        )
        .order_by("at", "pk")
        .values_list("pk", "lead_id", "at")
    ):
        latest[lead_id] = (pk, at)
    if not latest:
        return []
    touched = set(
        Activity.objects.filter(
            lead_id__in=list(latest),
            type__in=TOUCHES,
            occurred_at__gte=min(at for _, at in latest.values()),
            occurred_at__lte=now,
        ).values_list("lead_id", "occurred_at")
    )
    touched_after = {lead_id for lead_id, at in touched if at >= latest[lead_id][1]}
    return [
        (pk, lead_id, at, leads[lead_id])
        for lead_id, (pk, at) in latest.items()
        if lead_id not in touched_after and lead_id in leads
    ]


def speed_to_lead_reminders_run(
    *, tenant: Tenant, now: dt.datetime | None = None
) -> SpeedRemindersResult:
    """Remind the owners (then the managers) of the MQLs past their speed-to-lead SLA."""
    now = now or timezone.now()
    result = SpeedRemindersResult()
    with tenant_context(tenant):
        version = active_version()
        hours = ((version.sla if version is not None else None) or {}).get("speedToLeadHours")
        if not hours:
            return result
        clocks = _open_clocks(now)
        if not clocks:
            return result
        calendar = business_hours_for(
            tenant,
            min(at for _, _, at, _ in clocks).date() - dt.timedelta(days=1),
            now.date() + dt.timedelta(days=2),
        )
        limit = dt.timedelta(hours=hours)
        owners = {
            m.pk: m
            for m in Membership.objects.filter(
                pk__in={lead.owner_id for *_, lead in clocks if lead.owner_id}
            ).select_related("user")
        }
        drafts: list[EventDraft] = []
        for transition_id, _, at, lead in clocks:
            elapsed = calendar.between(at, now)
            percent = int(elapsed / limit * 100)
            if elapsed <= limit * OWNER_PERCENT / 100:
                continue
            owner = owners.get(lead.owner_id) if lead.owner_id else None
            payload: dict[str, Any] = {
                "leadId": relay.to_base64("Lead", lead.pk),
                "company": lead.company,
                "stage": Stage.MQL,
                "mqlAt": at.isoformat(),
                "dueAt": calendar.deadline(at, hours).isoformat(),
                "percent": percent,
                "ownerName": None if owner is None else owner.display_name or owner.user.username,
            }
            key = f"{SPEED_TO_LEAD_REMINDER}:{transition_id}"
            drafts.append(
                EventDraft(
                    SPEED_TO_LEAD_REMINDER,
                    payload,
                    [owner.pk] if owner is not None else [],
                    list(CHANNELS),
                    f"{key}:owner",
                )
            )
            if elapsed > limit * MANAGER_PERCENT / 100:
                drafts.append(
                    EventDraft(
                        SPEED_TO_LEAD_REMINDER,
                        payload | {"escalated": True},
                        managers_of(owner),
                        list(CHANNELS),
                        f"{key}:manager",
                    )
                )
        for event in events_publish(tenant=tenant, drafts=drafts):
            if event.dedup_key.endswith(":manager"):
                result.escalated += 1
            else:
                result.reminded += 1
    return result
