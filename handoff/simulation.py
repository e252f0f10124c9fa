"""Routing simulation: the last N weeks of leads that became MQL or SQL replayed through a
(draft) version's routing and SLA, in memory. Shows the distribution, the load per rep and
week, capacity overflows and the SLA effect, and changes nothing."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from handoff.assigning import ROUTABLE_ROLES, capacity_window
from handoff.models import Handoff, RuleVersion
from handoff.routing import OWNER, SKIP_CAPACITY, pick_member, rotation
from handoff.sla_rules import SlaStatus, sla_status
from pipeline.lifecycle import Stage
from pipeline.models import Activity, StageTransition
from tenants.calendars import business_hours_for
from tenants.errors import ValidationFailed
from tenants.models import MemberAbsence, Membership, Tenant

MAX_WEEKS = 26
# Transitions replayed at most; a longer history is cut to its latest ones.
MAX_LEADS = 20_000


@dataclass
class MemberLoad:
    member_id: int
    name: str
    assigned: int = 0
    max_per_period: int = 0


@dataclass
class StageSimulation:
    """One stage's replay: how many leads, who got them, and how many nobody could take."""

    stage: str
    strategy: str | None
    leads: int = 0
    unassigned: int = 0
    capacity_overflows: int = 0
    members: list[MemberLoad] = field(default_factory=list)
    sla_hours: int | None = None
    sla_met: int = 0
    sla_breached: int = 0
    sla_open: int = 0


@dataclass
class Simulation:
    weeks: int
    start: dt.datetime
    end: dt.datetime
    stages: list[StageSimulation]


def routing_simulate(
    *, tenant: Tenant, version: RuleVersion, weeks: int, now: dt.datetime | None = None
) -> Simulation:
    """Replay the transitions into MQL and SQL of the last `weeks` weeks (oldest first)
    through `version`'s routing, from a fresh rotation; members on leave on a lead's day,
    inactive members and capacity caps are applied as live routing does. The SLA effect
    counts, under the version's SLA, the MQLs touched in time (speed-to-lead) and the SQL
    handoffs decided in time. Reads a fixed number of queries; writes nothing."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValidationFailed(f"weeks must be 1 to {MAX_WEEKS}.", field="weeks")
    now = now or timezone.now()
    start = now - dt.timedelta(weeks=weeks)
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    transitions = list(
        StageTransition.objects.filter(
            to_stage__in=[Stage.MQL, Stage.SQL], at__gte=start, at__lt=now
        )
        .annotate(
            first_touch=Subquery(
                Activity.objects.filter(
                    lead_id=OuterRef("lead_id"),
                    type__in=[Activity.Type.CALL, Activity.Type.EMAIL],
                    occurred_at__gte=OuterRef("at"),
                )
                .order_by("occurred_at")
                .values("occurred_at")[:1]
            )
        )
        .order_by("-at", "-pk")
        .values("pk", "to_stage", "at", "first_touch")[:MAX_LEADS]
    )
    transitions.reverse()
    members = {
        m["pk"]: m
        for m in Membership.objects.values(
            "pk", "team_id", "role", "is_active", "display_name", "user__username"
        )
    }
    leave: dict[int, list[tuple[dt.date, dt.date]]] = defaultdict(list)
    for member_id, first, last in MemberAbsence.objects.filter(
        end_date__gte=start.astimezone(zone).date()
    ).values_list("member_id", "start_date", "end_date"):
        leave[member_id].append((first, last))
    decided = {
        transition_id: (accepted_at or returned_at)
        for transition_id, accepted_at, returned_at in Handoff.objects.filter(
            transition__at__gte=start
        ).values_list("transition_id", "accepted_at", "returned_at")
    }
    calendar = business_hours_for(
        tenant,
        start.astimezone(zone).date() - dt.timedelta(days=1),
        now.date() + dt.timedelta(days=2),
    )
    sla = version.sla or {}
    stages = []
    for stage, hours in (("mql", sla.get("speedToLeadHours")), ("sql", sla.get("acceptHours"))):
        rows = [t for t in transitions if t["to_stage"] == stage]
        result = _replay(stage, (version.routing or {}).get(stage), rows, members, leave, zone)
        result.sla_hours = hours
        if hours:
            for row in rows:
                done = row["first_touch"] if stage == "mql" else decided.get(row["pk"])
                status = sla_status(
                    start=row["at"], done_at=done, now=now, hours=hours, calendar=calendar
                )
                if status == SlaStatus.MET:
                    result.sla_met += 1
                elif status == SlaStatus.BREACHED:
                    result.sla_breached += 1
                else:
                    result.sla_open += 1
        stages.append(result)
    return Simulation(weeks=weeks, start=start, end=now, stages=stages)


def _on_leave(leave: dict[int, list[tuple[dt.date, dt.date]]], day: dt.date) -> set[int]:
    return {m for m, spans in leave.items() if any(a <= day <= b for a, b in spans)}


def _replay(
    stage: str,
    rule: dict[str, Any] | None,
    rows: list[dict[str, Any]],
    members: dict[int, dict[str, Any]],
    leave: dict[int, list[tuple[dt.date, dt.date]]],
    zone: zoneinfo.ZoneInfo,
) -> StageSimulation:
    result = StageSimulation(stage=stage, strategy=None, leads=len(rows))
    if not rule:
        result.unassigned = len(rows)
        return result
    result.strategy = rule.get("strategy", "roundRobin")
    counts: Counter[int] = Counter()
    per_period: Counter[tuple[int, dt.datetime]] = Counter()
    if result.strategy == OWNER:
        owner = members.get(rule["ownerId"])
        for _ in rows:
            if owner is not None and owner["is_active"]:
                counts[owner["pk"]] += 1
            else:
                result.unassigned += 1
    else:
        weights = rule.get("weights", {})
        team = sorted(
            pk
            for pk, m in members.items()
            if m["team_id"] == rule["teamId"] and m["role"] in ROUTABLE_ROLES
        )
        order = rotation([(pk, weights.get(str(pk), 1)) for pk in team])
        inactive = {pk for pk in team if not members[pk]["is_active"]}
        cap = rule.get("capacity")
        position = 0
        for row in rows:
            window = capacity_window(row["at"], cap["period"], zone) if cap else None
            pick = pick_member(
                order=order,
                position=position,
                inactive=inactive,
                on_leave=_on_leave(leave, row["at"].astimezone(zone).date()),
                load={pk: per_period[(pk, window[0])] for pk in team} if window else {},
                cap=cap["max"] if cap else None,
            )
            position = pick.next_position
            if pick.member_id is None:
                result.unassigned += 1
                if any(s["reason"] == SKIP_CAPACITY for s in pick.skipped):
                    result.capacity_overflows += 1
                continue
            counts[pick.member_id] += 1
            if window:
                per_period[(pick.member_id, window[0])] += 1
    peak: dict[int, int] = defaultdict(int)
    for (pk, _), n in per_period.items():
        peak[pk] = max(peak[pk], n)
    result.members = [
        MemberLoad(
            member_id=pk,
            name=members[pk]["display_name"] or members[pk]["user__username"],
            assigned=n,
            max_per_period=peak.get(pk, 0),
        )
        for pk, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return result
