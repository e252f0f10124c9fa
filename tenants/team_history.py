"""A member's team history: which team they were in on each tenant-local day.

Every team-scoped KPI fact (activities, leads created, stage transitions, deals, active
reps, leads touched) counts for the team its rep was in on the fact's local day
(docs/kpis.md "Scopes"), so a move re-attributes only the days it covers: from its
effective day up to the member's next recorded change. A move takes effect at the start
of its local day (a day is the smallest unit KPIs are kept in, so a rep is in one team for
a whole day); it may be backdated, never dated in the future.

Each member's spans (MemberTeamSpan) are contiguous: the first starts at SINCE_ALWAYS, the
last is open and holds `Membership.team`, which this module keeps in sync. Apps above
tenants hear of every move through `register_team_moved` (pipeline marks the days dirty).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenants.bounds import day_check
from tenants.context import tenant_context
from tenants.errors import NotFound, ValidationFailed
from tenants.models import SINCE_ALWAYS, Membership, MemberTeamSpan, Team, Tenant

# listener(tenant_id, member_id, start, end): the member's team changed on the local days
# [start, end) (end None: up to now and on), inside the caller's transaction.
TeamMovedListener = Callable[[int, int, dt.date, "dt.date | None"], None]
_listeners: list[TeamMovedListener] = []

EFFECTIVE_FIELD = "teamEffectiveFrom"


def register_team_moved(listener: TeamMovedListener) -> TeamMovedListener:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def tenant_today(tenant: Tenant) -> dt.date:
    """Today in the tenant's time zone: the default day a move takes effect."""
    return timezone.now().astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date()


def effective_day(value: dt.date | str | None, *, tenant: Tenant) -> dt.date:
    """The local day a move takes effect: `value` (a date or an ISO `YYYY-MM-DD` text),
    today in the tenant's zone when None. A malformed or future day is a VALIDATION error."""
    today = tenant_today(tenant)
    if value is None:
        return today
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValidationFailed(
                "Give the day the move takes effect as YYYY-MM-DD.", field=EFFECTIVE_FIELD
            ) from exc
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationFailed("Give a day, not a time.", field=EFFECTIVE_FIELD)
    day_check(value, field=EFFECTIVE_FIELD)
    if value > today:
        raise ValidationFailed(
            f"A move cannot take effect after today ({today.isoformat()} in the workspace's "
            "time zone).",
            field=EFFECTIVE_FIELD,
        )
    return value


def team_history_start(membership: Membership) -> None:
    """A new member's first span: their team since always (they have no earlier rows)."""
    MemberTeamSpan.objects.create(
        tenant_id=membership.tenant_id,
        member=membership,
        team_id=membership.team_id,
        valid_from=SINCE_ALWAYS,
    )


@transaction.atomic
def member_team_move(
    *, membership: Membership, team: Team | None, effective_from: dt.date | str | None = None
) -> Membership:
    """Move a member to `team` (None: no team) from the local day `effective_from` (today
    by default) up to their next recorded change; the member's current team follows when
    the move reaches today. Moving to the team they are in on that day changes nothing."""
    tenant = Tenant.objects.get(pk=membership.tenant_id)
    day = effective_day(effective_from, tenant=tenant)
    with tenant_context(tenant):
        if team is not None and team.tenant_id != tenant.pk:
            raise NotFound("Team", field="teamId")
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        span = _apply(locked, team.pk if team is not None else None, day)
        if span is not None:
            current = (
                MemberTeamSpan.objects.filter(member=locked, valid_until__isnull=True)
                .values_list("team_id", flat=True)
                .first()
            )
            if current != locked.team_id:
                # NOTE: an update, not save(): the save signal would record the move again.
                Membership.objects.filter(pk=locked.pk).update(team_id=current)
                locked.team_id = current
            for listener in _listeners:
                listener(tenant.pk, locked.pk, *span)
    membership.team_id = locked.team_id
    return membership


def _apply(member: Membership, team_id: int | None, day: dt.date) -> tuple[Any, Any] | None:
    """Write `team_id` into the member's spans from `day` to their next change; the local
    days [start, end) whose team changed, or None when none did."""
    spans = list(MemberTeamSpan.objects.select_for_update().filter(member=member))
    if not spans:
        # A member stored below the ORM (raw SQL, a bulk insert) has no history yet.
        spans = [
            MemberTeamSpan.objects.create(
                tenant_id=member.tenant_id,
                member=member,
                team_id=member.team_id,
                valid_from=SINCE_ALWAYS,
            )
        ]
    spans.sort(key=lambda s: s.valid_from)
    index = max(i for i, s in enumerate(spans) if s.valid_from <= day)
    covering = spans[index]
    if covering.team_id == team_id:
        return None
    end = covering.valid_until
    if covering.valid_from == day:
        covering.team_id = team_id
        covering.save(update_fields=["team"])
        changed = covering
    else:
        covering.valid_until = day
        covering.save(update_fields=["valid_until"])
        changed = MemberTeamSpan.objects.create(
            tenant_id=member.tenant_id,
            member=member,
            team_id=team_id,
            valid_from=day,
            valid_until=end,
        )
        spans.insert(index + 1, changed)
        index += 1
    # Neighbours in the same team become one span, so a span always starts a change.
    following = spans[index + 1] if index + 1 < len(spans) else None
    if following is not None and following.team_id == team_id:
        changed.valid_until = following.valid_until
        following.delete()
        changed.save(update_fields=["valid_until"])
    previous = spans[index - 1] if index > 0 else None
    if previous is not None and previous.team_id == team_id:
        previous.valid_until = changed.valid_until
        changed.delete()
        previous.save(update_fields=["valid_until"])
    return day, end


def team_lookup(
    member_ids: Iterable[int | None],
) -> Callable[[int | None, dt.date], int | None]:
    """`team(member_id, local_day)` for the given members, from one read of their spans
    (call it in the tenant's context); None for no member or no team that day."""
    spans: dict[int, list[tuple[dt.date, dt.date | None, int | None]]] = {}
    wanted = {pk for pk in member_ids if pk is not None}
    rows = (
        MemberTeamSpan.objects.filter(member_id__in=wanted).values_list(
            "member_id", "valid_from", "valid_until", "team_id"
        )
        if wanted
        else ()
    )
    for member, since, until, team in rows:
        spans.setdefault(member, []).append((since, until, team))

    def team(member_id: int | None, day: dt.date) -> int | None:
        for since, until, team_id in spans.get(member_id, ()) if member_id is not None else ():
            if since <= day and (until is None or day < until):
                return team_id
        return None

    return team


def team_spans(membership: Membership) -> list[MemberTeamSpan]:
    """The member's history, oldest first."""
    with tenant_context(membership.tenant_id):
        return list(MemberTeamSpan.objects.filter(member=membership).order_by("valid_from"))


def membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    """post_save of a Membership: a new member starts a history; a team changed by a save
    that did not go through `member_team_move` (a shell, a fixture) is recorded as a move
    effective today, so the history and the current team never disagree."""
    update_fields = kwargs.get("update_fields")
    if kwargs.get("raw") or (update_fields is not None and "team" not in update_fields):
        return
    with tenant_context(instance.tenant_id):
        if created:
            team_history_start(instance)
            return
        current = (
            MemberTeamSpan.objects.filter(member=instance, valid_until__isnull=True)
            .values_list("team_id", flat=True)
            .first()
        )
        exists = current is not None or MemberTeamSpan.objects.filter(member=instance).exists()
        if exists and current == instance.team_id:
            return
        team = Team.all_tenants.filter(pk=instance.team_id).first() if instance.team_id else None
        member_team_move(membership=instance, team=team)
