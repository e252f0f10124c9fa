"""Reading the handoff queue: SQL handoffs awaiting field sales' acceptance, soonest due
first, with the business time left on their SLA (a fixed number of queries per page)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from handoff.models import Handoff, HandoffState
from handoff.selectors import check_page
from handoff.sla_rules import business_time_left
from tenants.calendars import business_hours_for
from tenants.models import Membership, Team, Tenant


@dataclass(frozen=True)
class QueueItem:
    handoff: Handoff
    business_time_left: dt.timedelta | None


def handoff_queue_page(
    *,
    tenant: Tenant,
    owner: Membership | None = None,
    team: Team | None = None,
    first: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[QueueItem], int]:
    """Awaiting handoffs (of one owner, or of the owners in one team), soonest due first and
    those without an SLA last, with the business time left (negative once breached)."""
    check_page(first, offset)
    now = now or timezone.now()
    handoffs = Handoff.objects.filter(state=HandoffState.AWAITING)
    if owner is not None:
        handoffs = handoffs.filter(owner=owner)
    if team is not None:
        handoffs = handoffs.filter(owner__team=team)
    page = list(
        handoffs.select_related("lead", "owner__user", "version").order_by(
            F("due_at").asc(nulls_last=True), "pk"
        )[offset : offset + first]
    )
    total = handoffs.count()
    timed = [h for h in page if h.sla_hours]
    if not timed:
        return [QueueItem(h, None) for h in page], total
    calendar = business_hours_for(
        tenant,
        min(h.handed_at for h in timed).date() - dt.timedelta(days=1),
        now.date() + dt.timedelta(days=2),
    )
    return [
        QueueItem(
            h,
            None
            if not h.sla_hours
            else business_time_left(
                start=h.handed_at, now=now, hours=h.sla_hours, calendar=calendar
            ),
        )
        for h in page
    ], total
