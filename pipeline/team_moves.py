"""A member's team move re-attributes only the days it covers: mark them for a recount.

Team-scoped KPI facts follow the team history (tenants.team_history), so a move from local
day `start` up to the member's next change `end` moves exactly the facts of that member on
those days: the days holding one of their rows are marked for a rescan, and so are `start`
and `end` themselves, on which the member's open deals change team in the weighted
pipeline (a stock). Stage transitions in the range take the new team as their recorded one,
so the field shown with a transition agrees with the numbers.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.db.models import Q

from pipeline.dirty import mark_days_dirty
from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition
from tenants.models import MemberTeamSpan, Tenant

# The instants a Python datetime can hold (a row stored below the API may lie outside).
_LAST_INSTANT = dt.datetime.max.replace(tzinfo=dt.UTC)


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def team_move_mark_dirty(
    tenant_id: int, member_id: int, start: dt.date, end: dt.date | None
) -> None:
    """Listener of tenants.team_history: runs in the move's transaction and tenant context."""
    tenant = Tenant.objects.get(pk=tenant_id)
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    lo = _midnight(start, zone)
    hi = _midnight(end, zone) if end is not None else _LAST_INSTANT
    deals = Deal.objects.filter(
        Q(owner_id=member_id) | Q(owner__isnull=True, lead__owner_id=member_id)
    )
    moments: list[dt.datetime | None] = [lo, None if end is None else hi]
    for queryset, field in (
        (Activity.objects.filter(rep_id=member_id), "occurred_at"),
        (Lead.objects.filter(created_owner_id=member_id), "created_at"),
        (StageTransition.objects.filter(owner_id=member_id), "at"),
        (deals, "created_at"),
        (deals, "closed_at"),
        (DealStageChange.objects.filter(deal__in=deals), "at"),
    ):
        in_range = queryset.filter(**{f"{field}__gte": lo, f"{field}__lt": hi})
        moments.extend(in_range.order_by().values_list(field, flat=True).distinct())
    mark_days_dirty(tenant=tenant, datetimes=moments, rescan=True)
    team_id = (
        MemberTeamSpan.objects.filter(member_id=member_id, valid_from__lte=start)
        .order_by("-valid_from")
        .values_list("team_id", flat=True)
        .first()
    )
    StageTransition.objects.filter(owner_id=member_id, at__gte=lo, at__lt=hi).update(
        team_id=team_id
    )
