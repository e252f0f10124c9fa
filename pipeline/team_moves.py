"""A member's team move re-attributes only the days it covers: mark them for a recount.

Team-scoped KPI facts follow the team history (tenants.team_history), so a move from local
day `start` up to the member's next change `end` moves exactly the facts of that member on
those days: the days holding one of their rows are marked for a rescan, and so are `start`
and `end` themselves, on which the member's open deals change team in the weighted
pipeline (a stock). Stage transitions in the range take the new team as their recorded one,
so the field shown with a transition agrees with the numbers.

Deleting a team is the same change for every span of it: its members' spans then hold no
team (MemberTeamSpan.team is SET_NULL), so the days of those spans are marked, in the
delete's transaction, and no rebuild is needed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.db.models import Q, QuerySet

from pipeline.dirty import mark_days_dirty
from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition
from tenants.context import tenant_context
from tenants.models import SINCE_ALWAYS, MemberTeamSpan, Team, Tenant

# The instants a Python datetime can hold (a row stored below the API may lie outside).
_LAST_INSTANT = dt.datetime.max.replace(tzinfo=dt.UTC)


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def member_days_mark(
    tenant: Tenant, member_id: int, start: dt.date, end: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime]:
    """Mark for a rescan the local days in [start, end) (end None: on and on) holding one of
    the member's rows, and the days `start` and `end` themselves, on which the member's open
    deals change team. Returns the range's instants [lo, hi) (lo None: since always).

    Runs in the caller's transaction and the tenant's context."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    # NOTE: SINCE_ALWAYS is no day of the calendar (its midnight east of UTC is in year 0),
    # and no deal changes team on it: the range is open below.
    lo = None if start <= SINCE_ALWAYS else _midnight(start, zone)
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
        in_range = queryset.filter(**{f"{field}__lt": hi})
        if lo is not None:
            in_range = in_range.filter(**{f"{field}__gte": lo})
        moments.extend(in_range.order_by().values_list(field, flat=True).distinct())
    mark_days_dirty(tenant=tenant, datetimes=moments, rescan=True)
    return lo, hi


def team_move_mark_dirty(
    tenant_id: int, member_id: int, start: dt.date, end: dt.date | None
) -> None:
    """Listener of tenants.team_history: runs in the move's transaction and tenant context."""
    tenant = Tenant.objects.get(pk=tenant_id)
    lo, hi = member_days_mark(tenant, member_id, start, end)
    team_id = (
        MemberTeamSpan.objects.filter(member_id=member_id, valid_from__lte=start)
        .order_by("-valid_from")
        .values_list("team_id", flat=True)
        .first()
    )
    transitions = StageTransition.objects.filter(owner_id=member_id, at__lt=hi)
    if lo is not None:
        transitions = transitions.filter(at__gte=lo)
    transitions.update(team_id=team_id)


def _tenant_deleted(origin: Any) -> bool:
    model = origin.model if isinstance(origin, QuerySet) else type(origin)
    return model is Tenant


def team_delete_mark_dirty(sender: Any, instance: Team, **kwargs: Any) -> None:
    """pre_delete of a Team: mark the days its members' spans cover, in the delete's
    transaction (read now: once deleted, those spans hold no team and cannot be told from
    the member's other teamless ones).

    Also the days of the rows whose recorded team is this one (transitions, leads) and of
    the leads its current members own: the funnels grouping by those lose the team too, and
    a marked day holds their cached results back until the refresh draws a new generation.
    A deleted tenant takes its rows and marks with it: nothing to mark then (nor any work).
    """
    if _tenant_deleted(kwargs.get("origin")):
        return
    tenant = Tenant.objects.get(pk=instance.tenant_id)
    with tenant_context(tenant):
        spans = MemberTeamSpan.objects.filter(team_id=instance.pk).values_list(
            "member_id", "valid_from", "valid_until"
        )
        for member_id, start, end in spans:
            member_days_mark(tenant, member_id, start, end)
        moments: list[dt.datetime | None] = []
        for queryset, field in (
            (StageTransition.objects.filter(team_id=instance.pk), "at"),
            (Lead.objects.filter(Q(team_id=instance.pk) | Q(owner__team_id=instance.pk)),
             "created_at"),
        ):  # fmt: skip
            moments.extend(queryset.order_by().values_list(field, flat=True).distinct())
        mark_days_dirty(tenant=tenant, datetimes=moments, rescan=True)
