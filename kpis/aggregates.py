"""Set-based aggregates of raw pipeline rows into snapshot measures, per period and scope.

Each function runs a fixed number of aggregating queries (one per scope type) over the raw
rows of a tenant-local date range and returns {(period_start, scope_type, scope_key):
{measure: value}}. Attribution, exactly as the design says:

- activities count for their rep; leads created for the lead's owner when it was created;
  transitions for the lead's owner at that time (StageTransition.owner); deals for the
  deal's owner (else the lead's owner);
- team = the team that member was in on the fact's tenant-local day, from the member's team
  history (tenants.team_history; for the weighted pipeline, a stock, on each day the deal
  is open);
- source = the lead's source; rows without a rep/owner count only in the tenant and source
  scopes.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, TruncDate

from kpis.scopes import ScopeType
from pipeline.dirty import local_day
from pipeline.lifecycle import Stage
from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition
from tenants.models import MemberTeamSpan

Key = tuple[date, str, str]
Rows = dict[Key, dict[str, Any]]

OUTREACH = (Activity.Type.CALL, Activity.Type.EMAIL)


def bounds(start: date, end: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The instants of the local midnights starting `start` and `end`."""
    return datetime.combine(start, time.min, tzinfo=zone), datetime.combine(
        end, time.min, tzinfo=zone
    )


def _as_text(expression: Any) -> Any:
    return Cast(expression, output_field=CharField())


def _scoped(
    queryset: QuerySet,
    *,
    rep: str | None,
    team: Any,
    source: str,
) -> Iterable[tuple[str, QuerySet, Any]]:
    """(scope type, queryset restricted to rows of that scope, key expression) per scope type."""
    yield ScopeType.TENANT, queryset, Value("")
    if team is not None:
        yield (
            ScopeType.TEAM,
            queryset.annotate(_team=team).filter(_team__isnull=False),
            _as_text(F("_team")),
        )
    if rep is not None:
        yield ScopeType.REP, queryset.filter(**{f"{rep}__isnull": False}), _as_text(F(rep))
    yield ScopeType.SOURCE, queryset, Coalesce(F(source), Value(""))


def _collect(
    out: Rows,
    queryset: QuerySet,
    *,
    period: Any,
    rep: str | None,
    team: Any,
    source: str,
    aggregates: dict[str, Any],
    convert: Callable[[date], date] = lambda d: d,
) -> None:
    for scope_type, scoped, key in _scoped(queryset, rep=rep, team=team, source=source):
        rows = (
            scoped.annotate(_period=period, _key=key)
            .values("_period", "_key")
            .annotate(**aggregates)
            .order_by()
        )
        for row in rows:
            period_start = convert(row.pop("_period"))
            scope_key = row.pop("_key") or ""
            bucket = out.setdefault((period_start, scope_type, scope_key), {})
            for name, value in row.items():
                if value:
                    bucket[name] = bucket.get(name, 0) + value


def _day(field: str, zone: zoneinfo.ZoneInfo) -> Any:
    return TruncDate(field, tzinfo=zone)


def team_on(member: str, moment: str, zone: zoneinfo.ZoneInfo) -> Subquery:
    """The team of the member in the row's field `member` on the tenant-local day of its
    field `moment` (None: no member, or no team that day), from the team history."""
    # NOTE: wrapped, since TruncDate needs its argument's type, which an OuterRef lacks.
    day = TruncDate(ExpressionWrapper(OuterRef(moment), output_field=DateTimeField()), tzinfo=zone)
    return Subquery(
        MemberTeamSpan.objects.filter(member_id=OuterRef(member), valid_from__lte=day)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=day))
        .values("team_id")[:1]
    )


def attributed_daily(
    queryset: QuerySet,
    *,
    day_field: str,
    zone: zoneinfo.ZoneInfo,
    rep: str | None,
    team: Any,
    source: str,
    value: Any,
) -> dict[Key, Any]:
    """Per tenant-local day of `day_field` and per scope, the aggregate `value` of the
    `queryset`'s rows: the portable `daily` of a registered measure (kpis.measures).

    `rep`: the field of the row's rep (None: no rep scope); `team`: an expression of its
    team (None: no team scope); `source`: the field of its lead source. Rows attribute to
    the scopes as the built-in measures' do (see this module's docstring).
    """
    out: Rows = {}
    _collect(
        out,
        queryset,
        period=_day(day_field, zone),
        rep=rep,
        team=team,
        source=source,
        aggregates={"value": value},
    )
    return {key: values["value"] for key, values in out.items() if values.get("value")}


def activity_measures(
    out: Rows, *, start: date, end: date, zone: zoneinfo.ZoneInfo, distinct: bool = True
) -> None:
    """Activity counts per day (and, with `distinct`, the day's distinct leads and reps)."""
    lo, hi = bounds(start, end, zone)
    outreach = Q(type__in=OUTREACH)
    aggregates: dict[str, Any] = {
        "calls": Count("id", filter=Q(type=Activity.Type.CALL)),
        "connects": Count(
            "id", filter=Q(type=Activity.Type.CALL, call_outcome=Activity.CallOutcome.CONNECTED)
        ),
        "outreach": Count("id", filter=outreach),
        "emails_sent": Count("id", filter=Q(type=Activity.Type.EMAIL)),
        "emails_delivered": Count("id", filter=Q(type=Activity.Type.EMAIL, email_delivered=True)),
        "emails_opened": Count("id", filter=Q(type=Activity.Type.EMAIL, email_opened=True)),
        "emails_clicked": Count("id", filter=Q(type=Activity.Type.EMAIL, email_clicked=True)),
    }
    if distinct:
        aggregates.update(distinct_activity_aggregates())
    _collect(
        out,
        Activity.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi),
        period=_day("occurred_at", zone),
        rep="rep_id",
        team=team_on("rep_id", "occurred_at", zone),
        source="lead__source",
        aggregates=aggregates,
    )


def distinct_activity_aggregates() -> dict[str, Any]:
    return {
        "leads_touched": Count("lead_id", distinct=True, filter=Q(type__in=OUTREACH)),
        "active_reps": Count("rep_id", distinct=True),
    }


def distinct_activity_measures(
    out: Rows, *, start: date, end: date, period_start: date, zone: zoneinfo.ZoneInfo
) -> None:
    """Distinct leads touched and active reps over the whole range [start, end)."""
    lo, hi = bounds(start, end, zone)
    _collect(
        out,
        Activity.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi),
        period=Value(period_start),
        rep="rep_id",
        team=team_on("rep_id", "occurred_at", zone),
        source="lead__source",
        aggregates=distinct_activity_aggregates(),
        convert=lambda _: period_start,
    )


def lead_measures(out: Rows, *, start: date, end: date, zone: zoneinfo.ZoneInfo) -> None:
    lo, hi = bounds(start, end, zone)
    _collect(
        out,
        Lead.objects.filter(created_at__gte=lo, created_at__lt=hi),
        period=_day("created_at", zone),
        rep="created_owner_id",
        team=team_on("created_owner_id", "created_at", zone),
        source="source",
        aggregates={"leads_created": Count("id")},
    )


_TRANSITION_MEASURES = {
    "mqls": Stage.MQL,
    "sqls": Stage.SQL,
    "meetings": Stage.MEETING,
    "opportunities": Stage.OPPORTUNITY,
    "wins": Stage.WON,
    "losses": Stage.LOST,
    "recycles": Stage.RECYCLED,
}


def transition_measures(out: Rows, *, start: date, end: date, zone: zoneinfo.ZoneInfo) -> None:
    lo, hi = bounds(start, end, zone)
    _collect(
        out,
        StageTransition.objects.filter(at__gte=lo, at__lt=hi),
        period=_day("at", zone),
        rep="owner_id",
        # The owner's team that day (an unowned lead's transition has none).
        team=team_on("owner_id", "at", zone),
        source="lead__source",
        aggregates={
            name: Count("id", filter=Q(to_stage=stage))
            for name, stage in _TRANSITION_MEASURES.items()
        },
    )


def _deal_owner() -> Any:
    return Coalesce(F("owner_id"), F("lead__owner_id"))


def deal_measures(out: Rows, *, start: date, end: date, zone: zoneinfo.ZoneInfo) -> None:
    lo, hi = bounds(start, end, zone)
    created = Deal.objects.filter(created_at__gte=lo, created_at__lt=hi, sourced_by_is=True)
    _collect(
        out,
        created.annotate(_owner=_deal_owner()),
        period=_day("created_at", zone),
        rep="_owner",
        team=team_on("_owner", "created_at", zone),
        source="lead__source",
        aggregates={"deals_created": Count("id"), "pipeline_created": Sum("amount")},
    )
    won = Deal.objects.filter(closed_at__gte=lo, closed_at__lt=hi, stage__is_won=True)
    _collect(
        out,
        won.annotate(_owner=_deal_owner()),
        period=_day("closed_at", zone),
        rep="_owner",
        team=team_on("_owner", "closed_at", zone),
        source="lead__source",
        aggregates={"won_deals": Count("id"), "revenue": Sum("amount")},
    )


def weighted_pipeline_changes(
    out: Rows, *, start: date, end: date, zone: zoneinfo.ZoneInfo
) -> None:
    """The change of the weighted pipeline on each day of [start, end), per scope.

    A deal counts at an instant e (a local midnight ending a day) when it was created before e
    and not closed before e (closed_at >= e), at amount x the win probability of the stage it
    was in at e: its latest stage change strictly before e (the first recorded stage before
    any change; the deal's current stage when it has no history). Closed stages count 0.
    Each (deal, stage) interval (lo, hi] therefore adds its value on the day of `lo` and
    removes it on the day of `hi`; the level at a period's end is the sum of all changes of
    the days before it.
    """
    lo_instant, hi_instant = bounds(start, end, zone)
    # Deals with an instant in the range: only they can change the level on these days.
    # NOTE: their ids are collected first, one index range each; an OR of the three in one
    # filter defeats the indexes and the row estimate, and the join to the leads then scans
    # every lead of the tenant.
    ids = (
        Deal.objects.filter(created_at__gte=lo_instant, created_at__lt=hi_instant)
        .order_by()
        .values_list("pk", flat=True)
        .union(
            Deal.objects.filter(closed_at__gte=lo_instant, closed_at__lt=hi_instant)
            .order_by()
            .values_list("pk", flat=True),
            DealStageChange.objects.filter(at__gte=lo_instant, at__lt=hi_instant)
            .order_by()
            .values_list("deal_id", flat=True),
        )
    )
    ids = list(ids)
    # An open deal also changes team on a day its owner changes team (see below).
    movers = list(
        MemberTeamSpan.objects.filter(valid_from__gte=start, valid_from__lt=end)
        .order_by()
        .values_list("member_id", flat=True)
        .distinct()
    )
    if movers:
        ids += Deal.objects.filter(
            Q(owner_id__in=movers) | Q(owner__isnull=True, lead__owner_id__in=movers)
        ).values_list("pk", flat=True)
    deals = list(
        Deal.objects.filter(pk__in=set(ids))
        .annotate(_owner=_deal_owner())
        .values(
            "pk",
            "amount",
            "created_at",
            "closed_at",
            "stage__win_probability",
            "stage__is_won",
            "stage__is_lost",
            "_owner",
            "lead__source",
        )
    )
    if not deals:
        return
    teams = _TeamHistory({deal["_owner"] for deal in deals if deal["_owner"] is not None})
    history: dict[int, list[tuple[datetime, Decimal, bool]]] = defaultdict(list)
    for change in (
        DealStageChange.objects.filter(deal_id__in=[d["pk"] for d in deals])
        .order_by("deal_id", "at", "id")
        .values_list("deal_id", "at", "stage__win_probability", "stage__is_won", "stage__is_lost")
    ):
        history[change[0]].append((change[1], change[2], change[3] or change[4]))
    for deal in deals:
        changes = history.get(deal["pk"]) or [
            (
                deal["created_at"],
                deal["stage__win_probability"],
                deal["stage__is_won"] or deal["stage__is_lost"],
            )
        ]
        for index, (at, probability, closed) in enumerate(changes):
            if closed or not probability:
                continue
            window_lo = deal["created_at"] if index == 0 else max(at, deal["created_at"])
            window_hi = changes[index + 1][0] if index + 1 < len(changes) else None
            if deal["closed_at"] is not None:
                window_hi = (
                    deal["closed_at"] if window_hi is None else min(window_hi, deal["closed_at"])
                )
            if window_hi is not None and window_hi <= window_lo:
                continue
            value = deal["amount"] * probability
            # A bound far off (year 9999 at UTC+14) has no local date: clamped, it is simply
            # not a day of the range.
            day_in = local_day(window_lo, zone)
            day_out = local_day(window_hi, zone) if window_hi is not None else None
            if day_out == day_in:
                continue
            owner = deal["_owner"]
            for day, sign in ((day_in, 1), (day_out, -1)):
                if day is None or not start <= day < end:
                    continue
                _add_stock(out, day, deal, sign * value, teams.on(owner, day))
            # The open deal moves with its owner: on each day the owner changes team, its
            # value leaves the old team and joins the new one (other scopes are unmoved).
            for day in teams.changes(owner, after=day_in, until=day_out):
                if start <= day < end:
                    _add_team_stock(out, day, teams.on(owner, day - timedelta(days=1)), -value)
                    _add_team_stock(out, day, teams.on(owner, day), value)


class _TeamHistory:
    """The team history of some members, read once: the team on a day, the change days."""

    def __init__(self, members: set[int]) -> None:
        self.spans: dict[int, list[tuple[date, date | None, int | None]]] = defaultdict(list)
        for member, since, until, team in (
            MemberTeamSpan.objects.filter(member_id__in=members)
            .order_by("member_id", "valid_from")
            .values_list("member_id", "valid_from", "valid_until", "team_id")
        ):
            self.spans[member].append((since, until, team))

    def on(self, member: int | None, day: date) -> int | None:
        for since, until, team in self.spans.get(member, ()) if member is not None else ():
            if since <= day and (until is None or day < until):
                return team
        return None

    def changes(self, member: int | None, *, after: date, until: date | None) -> list[date]:
        """The days in (after, until] (until None: after `after`) on which the member's
        team changes."""
        if member is None:
            return []
        return [
            since
            for since, _, _ in self.spans.get(member, ())[1:]
            if since > after and (until is None or since <= until)
        ]


def _add_stock(
    out: Rows, day: date, deal: dict[str, Any], value: Decimal, team: int | None
) -> None:
    keys = [(day, ScopeType.TENANT, ""), (day, ScopeType.SOURCE, deal["lead__source"] or "")]
    if deal["_owner"] is not None:
        keys.append((day, ScopeType.REP, str(deal["_owner"])))
    for key in keys:
        bucket = out.setdefault(key, {})
        bucket["weighted_pipeline_change"] = bucket.get("weighted_pipeline_change", 0) + value
    _add_team_stock(out, day, team, value)


def _add_team_stock(out: Rows, day: date, team: int | None, value: Decimal) -> None:
    if team is None:
        return
    bucket = out.setdefault((day, ScopeType.TEAM, str(team)), {})
    bucket["weighted_pipeline_change"] = bucket.get("weighted_pipeline_change", 0) + value


def daily_measures(*, start: date, end: date, zone: zoneinfo.ZoneInfo) -> Rows:
    """Every day-grain measure of the tenant-local dates [start, end), per scope."""
    out: Rows = {}
    activity_measures(out, start=start, end=end, zone=zone)
    lead_measures(out, start=start, end=end, zone=zone)
    transition_measures(out, start=start, end=end, zone=zone)
    deal_measures(out, start=start, end=end, zone=zone)
    weighted_pipeline_changes(out, start=start, end=end, zone=zone)
    return out
