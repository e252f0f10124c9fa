"""An independent, deliberately naive reference for KPI values: Python over raw rows.

It follows the design's definitions directly (no snapshots, no rollups, no interval tricks)
so the snapshot engine can be checked against it on generated data. A team-scoped fact counts
for the team its rep was in on the fact's tenant-local day, looked up by a plain scan of the
member's team history rows (MemberTeamSpan); the weighted pipeline at a period's end counts
each open deal for its owner's team on the period's last day.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import holidays

from kpis.catalogue import BUILTIN_KPIS, KpiDefinition
from kpis.numbers import ratio
from kpis.periods import Period
from kpis.scopes import KpiScope, ScopeType
from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition
from tenants.models import MemberTeamSpan, Tenant, TenantClosure


@dataclass
class TeamHistory:
    """The members' team history rows (member, from, until, team), scanned as they are."""

    zone: zoneinfo.ZoneInfo
    spans: list[tuple[int, date, date | None, int | None]]

    def on(self, member: int | None, day: date) -> int | None:
        """The member's team on the local `day`: the span holding it (None: no member, no
        team that day, or no history)."""
        for who, since, until, team in self.spans:
            if who == member and since <= day and (until is None or day < until):
                return team
        return None

    def at(self, member: int | None, moment: datetime) -> int | None:
        """The member's team on the local day of `moment`."""
        return self.on(member, moment.astimezone(self.zone).date())


@dataclass
class Raw:
    zone: zoneinfo.ZoneInfo
    country: str
    closures: set[date]
    activities: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    transitions: list[dict[str, Any]]
    deals: list[dict[str, Any]]
    changes: dict[int, list[tuple[datetime, Decimal, bool]]]
    teams: TeamHistory


def load(tenant: Tenant) -> Raw:
    """All of the tenant's raw rows (call inside its tenant context)."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    teams = TeamHistory(
        zone,
        list(
            MemberTeamSpan.objects.values_list("member_id", "valid_from", "valid_until", "team_id")
        ),
    )
    sources = dict(Lead.objects.values_list("pk", "source"))
    owners = dict(Lead.objects.values_list("pk", "owner_id"))
    activities = [
        {
            **row,
            "team": teams.at(row["rep_id"], row["occurred_at"]),
            "source": sources[row["lead_id"]],
        }
        for row in Activity.objects.values(
            "occurred_at", "type", "call_outcome", "email_delivered", "email_opened",
            "email_clicked", "lead_id", "rep_id",
        )
    ]  # fmt: skip
    leads = [
        # A lead's creation counts for its owner then (and that member's team that day).
        {
            **row,
            "owner_id": row["created_owner_id"],
            "team": teams.at(row["created_owner_id"], row["created_at"]),
        }
        for row in Lead.objects.values("created_at", "created_owner_id", "source")
    ]
    # A transition counts for its owner then and that member's team that day (by the
    # history, not by the team recorded on the row).
    transitions = [
        {
            **row,
            "team": teams.at(row["owner_id"], row["at"]),
            "source": sources[row["lead_id"]],
        }
        for row in StageTransition.objects.values(
            "at", "to_stage", "owner_id", "team_id", "lead_id"
        )
    ]
    deals = []
    for row in Deal.objects.values(
        "pk", "created_at", "closed_at", "amount", "sourced_by_is", "owner_id", "lead_id",
        "stage__is_won", "stage__is_lost", "stage__win_probability",
    ):  # fmt: skip
        owner = row["owner_id"] if row["owner_id"] is not None else owners[row["lead_id"]]
        deals.append({**row, "owner": owner, "source": sources[row["lead_id"]]})
    changes: dict[int, list[tuple[datetime, Decimal, bool]]] = {}
    for deal_id, at, probability, won, lost in DealStageChange.objects.order_by(
        "at", "id"
    ).values_list("deal_id", "at", "stage__win_probability", "stage__is_won", "stage__is_lost"):
        changes.setdefault(deal_id, []).append((at, probability, won or lost))
    return Raw(
        zone=zone,
        country=tenant.holiday_country,
        closures=set(TenantClosure.objects.values_list("date", flat=True)),
        activities=activities,
        leads=leads,
        transitions=transitions,
        deals=deals,
        changes=changes,
        teams=teams,
    )


def _in_scope(scope: KpiScope, *, rep: int | None, team: int | None, source: str) -> bool:
    if scope.type == ScopeType.TENANT:
        return True
    if scope.type == ScopeType.SOURCE:
        return (source or "") == scope.key
    if rep is None:
        return False
    if scope.type == ScopeType.REP:
        return str(rep) == scope.key
    return team is not None and str(team) == scope.key


def _working_days(raw: Raw, period: Period) -> int:
    public = holidays.country_holidays(
        raw.country, years=range(period.start.year, period.end.year + 1)
    )
    count, day = 0, period.start
    while day < period.end:
        if day.weekday() < 5 and day not in public and day not in raw.closures:
            count += 1
        day += timedelta(days=1)
    return count


def measures(raw: Raw, period: Period, scope: KpiScope) -> dict[str, Any]:
    def inside(moment: datetime | None) -> bool:
        return moment is not None and period.contains(moment.astimezone(raw.zone).date())

    m: dict[str, Any] = {}
    acts = [
        a
        for a in raw.activities
        if inside(a["occurred_at"])
        and _in_scope(scope, rep=a["rep_id"], team=a["team"], source=a["source"])
    ]
    calls = [a for a in acts if a["type"] == "call"]
    emails = [a for a in acts if a["type"] == "email"]
    outreach = [a for a in acts if a["type"] in ("call", "email")]
    m["calls"] = len(calls)
    m["connects"] = sum(1 for a in calls if a["call_outcome"] == "connected")
    m["outreach"] = len(outreach)
    m["leads_touched"] = len({a["lead_id"] for a in outreach})
    m["active_reps"] = len({a["rep_id"] for a in acts if a["rep_id"] is not None})
    m["emails_sent"] = len(emails)
    m["emails_delivered"] = sum(1 for a in emails if a["email_delivered"])
    m["emails_opened"] = sum(1 for a in emails if a["email_opened"])
    m["emails_clicked"] = sum(1 for a in emails if a["email_clicked"])
    m["leads_created"] = sum(
        1
        for lead in raw.leads
        if inside(lead["created_at"])
        and _in_scope(scope, rep=lead["owner_id"], team=lead["team"], source=lead["source"])
    )
    for name, stage in (
        ("mqls", "mql"), ("sqls", "sql"), ("meetings", "meeting"),
        ("opportunities", "opportunity"), ("wins", "won"), ("losses", "lost"),
        ("recycles", "recycled"),
    ):  # fmt: skip
        m[name] = sum(
            1
            for t in raw.transitions
            if t["to_stage"] == stage
            and inside(t["at"])
            and _in_scope(
                scope,
                rep=t["owner_id"],
                team=t["team"],
                source=t["source"],
            )
        )

    def deals_in_scope(team_on: Callable[[dict[str, Any]], int | None]) -> list[dict[str, Any]]:
        return [
            d
            for d in raw.deals
            if _in_scope(scope, rep=d["owner"], team=team_on(d), source=d["source"])
        ]

    created = [
        d
        for d in deals_in_scope(lambda d: raw.teams.at(d["owner"], d["created_at"]))
        if d["sourced_by_is"] and inside(d["created_at"])
    ]
    m["deals_created"] = len(created)
    m["pipeline_created"] = sum((d["amount"] for d in created), Decimal(0))
    won = [
        d
        for d in deals_in_scope(
            lambda d: raw.teams.at(d["owner"], d["closed_at"]) if d["closed_at"] else None
        )
        if d["stage__is_won"] and inside(d["closed_at"])
    ]
    m["won_deals"] = len(won)
    m["revenue"] = sum((d["amount"] for d in won), Decimal(0))
    end = datetime.combine(period.end, time.min, tzinfo=raw.zone)
    last_day = period.end - timedelta(days=1)
    stock = Decimal(0)
    # The stock at the period's end: each deal open then, for its owner's team on the last day.
    for d in deals_in_scope(lambda d: raw.teams.on(d["owner"], last_day)):
        if not d["created_at"] < end or (d["closed_at"] is not None and d["closed_at"] < end):
            continue
        history = raw.changes.get(d["pk"]) or [
            (
                d["created_at"],
                d["stage__win_probability"],
                d["stage__is_won"] or d["stage__is_lost"],
            )
        ]
        before = [c for c in history if c[0] < end]
        _, probability, closed = before[-1] if before else history[0]
        if not closed:
            stock += d["amount"] * probability
    m["weighted_pipeline"] = stock
    m["working_days"] = _working_days(raw, period)
    m["rep_working_days"] = m["active_reps"] * m["working_days"]
    return m


def kpi(raw: Raw, definition: KpiDefinition, period: Period, scope: KpiScope) -> Decimal | None:
    m = measures(raw, period, scope)
    if definition.denominator is None:
        return Decimal(m[definition.numerator])
    return ratio(
        m[definition.numerator], m[definition.denominator], multiplier=definition.multiplier
    )


ALL_KPIS = BUILTIN_KPIS
