"""Handoff's measures and KPIs in every tenant's catalogue: speed-to-lead, the accept SLA's
attainment and breaches, and the return rate (registered from HandoffConfig.ready(); kpis
imports nothing of handoff).

Which tenant-local day each fact belongs to:

- speed-to-lead (`speed_to_lead_seconds`, `mqls_first_touched`): the day of the first touch
  (the lead's first call or e-mail at or after its transition into `mql`: the day the clock
  stopped); the business time from the transition to that touch (tenant business hours).
  An MQL not touched yet counts nowhere. Measured for workspaces with a rule set only
  (`uses_handoff`). Attributed to the member of the lead's MQL
  assignment (the latest made from the transition to the touch), else to the lead's owner
  at the transition; team = that member's team on the fact's day; source = the lead's source.
- accept SLA (`handoff_sla_met`, `handoff_sla_due`, `handoff_sla_breaches`): the day of the
  handoff's deadline (`due_at`), whenever the outcome became known. Met = accepted or
  returned within `sla_hours` business hours; breached = decided later, or marked breached
  by the SLA run while awaiting; still open counts nowhere. Handoffs without an SLA count in
  neither.
- `handoffs`: the day of the SQL handoff (`handed_at`); `handoff_returns`: the day of the
  return (`returned_at`).
Handoff facts are attributed to the handoff's owner (field sales; after a reassignment, the
new owner), that member's team on the fact's day, and the lead's source.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.db.models import Count, Max, Min, OuterRef, Q, Subquery
from django.utils import timezone

from handoff.models import Assignment, Handoff, HandoffState, RuleSet
from kpis.aggregates import attributed_daily, bounds, team_on
from kpis.catalogue import Category, Direction, KpiDefinition, Layer, Unit, register_kpi
from kpis.measure_store import pass_cache
from kpis.measures import DailyValues, Measure, register_measure
from kpis.models import KpiMeasureBuild
from kpis.scopes import ScopeType
from pipeline.dirty import local_day, mark_days_dirty, register_dirty_kind
from pipeline.lifecycle import Stage
from pipeline.models import Activity, DirtyKind, StageTransition
from tenants.business_hours import BusinessHours
from tenants.calendars import business_hours_for
from tenants.models import Tenant
from tenants.team_history import team_lookup

HANDOFF_KIND = register_dirty_kind("handoff")
TOUCHES = (Activity.Type.CALL, Activity.Type.EMAIL)
_MICROSECONDS = Decimal("0.000001")


def mark_handoff_days(*, tenant: Tenant | int, datetimes: Iterable[dt.datetime | None]) -> None:
    """Mark the days of handoff facts dirty (handoff's own kind: built-in columns stay)."""
    if isinstance(tenant, int):
        tenant = Tenant.objects.get(pk=tenant)
    mark_days_dirty(tenant=tenant, datetimes=list(datetimes), kinds=HANDOFF_KIND)


def handoff_team_moved(tenant_id: int, member_id: int, start: dt.date, end: dt.date | None) -> None:
    """Listener of tenants.team_history: the member's handoff facts on the local days
    [start, end) now count for another team, so their days are marked for a recount (the
    pipeline marks the days of its own rows; these facts lie on handoff and touch days)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    lo = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    in_range = {"gte": lo} | (
        {} if end is None else {"lt": dt.datetime.combine(end, dt.time.min, tzinfo=zone)}
    )
    moments: list[dt.datetime | None] = []
    owned = Handoff.objects.filter(owner_id=member_id)
    for field in ("handed_at", "returned_at", "due_at"):
        rows = owned.filter(**{f"{field}__{op}": value for op, value in in_range.items()})
        moments.extend(rows.order_by().values_list(field, flat=True).distinct())
    # Speed-to-lead counts on the first touch's day for the MQL's assignee (else its owner).
    leads = Assignment.objects.filter(member_id=member_id, stage="mql").values("lead_id")
    mqls = StageTransition.objects.filter(to_stage=Stage.MQL, owner_id=member_id).values("lead_id")
    touches = Activity.objects.filter(Q(lead_id__in=leads) | Q(lead_id__in=mqls), type__in=TOUCHES)
    touches = touches.filter(**{f"occurred_at__{op}": value for op, value in in_range.items()})
    moments.extend(touches.order_by().values_list("occurred_at", flat=True).distinct())
    mark_days_dirty(tenant=tenant, datetimes=moments, rescan=True, kinds=HANDOFF_KIND)


def first_touch_after(*, lead_id: int, at: dt.datetime) -> dt.datetime | None:
    """The lead's first call or e-mail at or after `at` (the speed-to-lead clock's stop)."""
    return (
        Activity.objects.filter(lead_id=lead_id, type__in=TOUCHES, occurred_at__gte=at)
        .order_by("occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )


def _seconds(duration: dt.timedelta) -> Decimal:
    # exact: whole microseconds, as KpiMeasureValue's 6 decimal places hold them
    return Decimal(duration.days * 86400 + duration.seconds) + duration.microseconds * _MICROSECONDS


class _BusinessClock:
    """Business time between instants in O(1) each, for many facts at once: the business
    time from the first day's midnight to an instant, by the days' cumulative business
    hours. Equal to `BusinessHours.between` (the overlap of [a, b) with business hours on
    working days, opening and closing at local clock times, real elapsed time)."""

    def __init__(self, calendar: BusinessHours, first: dt.date, last: dt.date) -> None:
        self.zone, self.first = calendar.zone, first
        self.hours: list[tuple[dt.datetime, dt.datetime] | None] = []
        self.before: list[dt.timedelta] = []
        total = dt.timedelta(0)
        day = first
        while day <= last:
            working = day.weekday() < 5 and day not in calendar.off
            opens = dt.datetime.combine(day, calendar.opens, tzinfo=self.zone).astimezone(dt.UTC)
            closes = dt.datetime.combine(day, calendar.closes, tzinfo=self.zone).astimezone(dt.UTC)
            self.hours.append((opens, closes) if working else None)
            self.before.append(total)
            if working:
                total += closes - opens
            day += dt.timedelta(days=1)

    def _since_first(self, moment: dt.datetime) -> dt.timedelta:
        index = (moment.astimezone(self.zone).date() - self.first).days
        hours = self.hours[index]
        if hours is None:
            return self.before[index]
        opens, closes = hours
        return self.before[index] + max(dt.timedelta(0), min(moment, closes) - opens)

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        if end <= start:
            return dt.timedelta(0)
        return self._since_first(end) - self._since_first(start)


def _calendar(tenant_id: int, first: dt.datetime, last: dt.datetime) -> BusinessHours:
    tenant = Tenant.objects.get(pk=tenant_id)
    return business_hours_for(
        tenant, first.date() - dt.timedelta(days=1), last.date() + dt.timedelta(days=2)
    )


def _add(
    out: dict,
    day: dt.date,
    rep: int | None,
    team_on: Callable[[int | None, dt.date], int | None],
    source: str,
    value,
) -> None:
    keys = [(ScopeType.TENANT, ""), (ScopeType.SOURCE, source or "")]
    if rep is not None:
        keys.append((ScopeType.REP, str(rep)))
        team = team_on(rep, day)  # the rep's team on the fact's local day, as for every fact
        if team is not None:
            keys.append((ScopeType.TEAM, str(team)))
    for scope_type, scope_key in keys:
        out[(day, scope_type, scope_key)] += value


# --- speed-to-lead ---------------------------------------------------------------------------


def _speed_facts(
    tenant_id: int, start: dt.date, end: dt.date, zone: zoneinfo.ZoneInfo
) -> list[tuple[dt.date, int | None, str, Decimal]]:
    """(touch day, member, source, business seconds) per MQL first touched in [start, end)."""
    lo, hi = bounds(start, end, zone)
    touched = Activity.objects.filter(
        type__in=TOUCHES, occurred_at__gte=lo, occurred_at__lt=hi
    ).values("lead_id")
    # NOTE: the first touch per clock by an indexed lookup in the database: reading the
    # touches themselves would load every activity of the leads on a rebuild.
    stopped = list(
        StageTransition.objects.filter(to_stage=Stage.MQL, at__lt=hi, lead_id__in=touched)
        .annotate(touch=_first_touch())
        .filter(touch__gte=lo, touch__lt=hi)
        .order_by()
        .values_list("lead_id", "at", "owner_id", "touch", "lead__source")
    )
    if not stopped:
        return []
    assigned: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    # NOTE: the leads by the same subquery, not a list of ids (a rebuild has them all)
    for lead_id, at, member_id in (
        Assignment.objects.filter(lead_id__in=touched, stage="mql", member__isnull=False)
        .order_by("lead_id", "at", "pk")
        .values_list("lead_id", "at", "member_id")
    ):
        assigned[lead_id].append((at, member_id))
    first = min(row[1] for row in stopped)
    clock = _BusinessClock(
        _calendar(tenant_id, first, hi), local_day(first, zone), local_day(hi, zone)
    )
    facts = []
    for lead_id, at, owner_id, touch, source in stopped:
        member = owner_id
        for when, member_id in assigned.get(lead_id, ()):
            if at <= when <= touch:
                member = member_id
        seconds = _seconds(clock.between(at, touch))
        facts.append((local_day(touch, zone), member, source or "", seconds))
    return facts


def uses_handoff() -> bool:
    """Whether the tenant in context has a handoff rule set. Speed-to-lead is measured only
    for those workspaces: it costs a lookup per MQL of every refreshed day, which
    workspaces that do not hand leads over should not pay (their values are none)."""
    cache = pass_cache()
    if "handoff.uses" not in cache:
        cache["handoff.uses"] = RuleSet.objects.exists()
    return cache["handoff.uses"]


def speed_to_lead_start(tenant: Tenant) -> None:
    """A workspace's first rule set: its speed-to-lead history is built whole by the next
    refresh (queued by the day marked), as for a measure newly deployed."""
    KpiMeasureBuild.objects.filter(measure__in=[m.key for m in MEASURES[:2]]).delete()
    mark_handoff_days(tenant=tenant, datetimes=[timezone.now()])


def _shared_facts(tenant_id: int, start, end, zone) -> list:
    """The facts of both speed-to-lead measures, computed once per refresh or rebuild pass."""
    if not uses_handoff():
        return []
    cache = pass_cache()
    key = ("handoff.speed_facts", tenant_id, start, end, zone.key)
    if key not in cache:
        cache[key] = _speed_facts(tenant_id, start, end, zone)
    return cache[key]


def _speed_daily(value_of, tenant_id: int, start, end, zone) -> DailyValues:
    facts = _shared_facts(tenant_id, start, end, zone)
    teams = team_lookup(member for _, member, _, _ in facts)
    out: dict = defaultdict(Decimal)
    for day, member, source, seconds in facts:
        _add(out, day, member, teams, source, value_of(seconds))
    return dict(out)


def speed_to_lead_seconds_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _speed_daily(lambda seconds: seconds, tenant_id, start, end, zone)


def mqls_first_touched_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _speed_daily(lambda seconds: Decimal(1), tenant_id, start, end, zone)


def _first_touch() -> Subquery:
    """The first call or e-mail of the transition's lead at or after it."""
    return Subquery(
        Activity.objects.filter(
            lead_id=OuterRef("lead_id"), type__in=TOUCHES, occurred_at__gte=OuterRef("at")
        )
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )


def speed_to_lead_related_days(*, tenant_id: int, start, end, zone) -> set[dt.date]:
    """The days outside [start, end) a change on those days can move: a touch added there
    takes the first touch from a later one (the lead's first touch after the range), and a
    transition into `mql` there starts a clock stopped by a later touch."""
    if not uses_handoff():
        return set()
    cache = pass_cache()
    key = ("handoff.speed_related", tenant_id, start, end, zone.key)
    if key not in cache:
        cache[key] = _related_days(start, end, zone)
    return set(cache[key])


def _related_days(start, end, zone) -> set[dt.date]:
    lo, hi = bounds(start, end, zone)
    touched = Activity.objects.filter(
        type__in=TOUCHES, occurred_at__gte=lo, occurred_at__lt=hi
    ).values("lead_id")
    later = (
        Activity.objects.filter(lead_id__in=touched, type__in=TOUCHES, occurred_at__gte=hi)
        .values("lead_id")
        .annotate(first=Min("occurred_at"))
        .values_list("first", flat=True)
    )
    stops = (
        StageTransition.objects.filter(to_stage=Stage.MQL, at__gte=lo, at__lt=hi)
        .annotate(stop=_first_touch())
        .filter(stop__gte=hi)
        .values_list("stop", flat=True)
    )
    return {local_day(moment, zone) for moment in [*later, *stops]}


# --- the accept SLA of SQL handoffs ----------------------------------------------------------


def _sla_outcomes(tenant_id: int, start, end, zone) -> list[tuple[dt.date, int | None, str, bool]]:
    """(deadline day, owner, source, met) per handoff due in [start, end) whose SLA outcome
    is known: met (decided within its business hours) or breached."""
    lo, hi = bounds(start, end, zone)
    rows = list(
        Handoff.objects.filter(sla_hours__isnull=False, due_at__gte=lo, due_at__lt=hi).values_list(
            "handed_at", "due_at", "accepted_at", "returned_at", "breached_at", "sla_hours",
            "owner_id", "lead__source",
        )
    )  # fmt: skip
    late = [row for row in rows if (row[2] or row[3]) and (row[2] or row[3]) > row[1]]
    calendar = (
        _calendar(tenant_id, min(row[0] for row in late), max(row[2] or row[3] for row in late))
        if late
        else None
    )
    out = []
    for handed, due, accepted, returned, breached, hours, owner, source in rows:
        decided = accepted or returned
        if decided is not None:
            met = decided <= due or calendar.between(handed, decided) <= dt.timedelta(hours=hours)
        elif breached is not None:
            met = False
        else:
            continue  # still open
        out.append((local_day(due, zone), owner, source or "", met))
    return out


def sla_span(*, tenant_id: int, zone) -> tuple[dt.date, dt.date] | None:
    """The days of the handoffs' deadlines: a deadline can fall after every pipeline row
    (accepted on Friday, due on Monday), and a rebuild must cover it."""
    found = Handoff.objects.filter(sla_hours__isnull=False, due_at__isnull=False).aggregate(
        first=Min("due_at"), last=Max("due_at")
    )
    if found["first"] is None:
        return None
    return local_day(found["first"], zone), local_day(found["last"], zone) + dt.timedelta(days=1)


def _sla_daily(counts, tenant_id: int, start, end, zone) -> DailyValues:
    outcomes = _sla_outcomes(tenant_id, start, end, zone)
    teams = team_lookup(owner for _, owner, _, _ in outcomes)
    out: dict = defaultdict(Decimal)
    for day, owner, source, met in outcomes:
        if counts(met):
            _add(out, day, owner, teams, source, Decimal(1))
    return dict(out)


def sla_met_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _sla_daily(lambda met: met, tenant_id, start, end, zone)


def sla_due_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _sla_daily(lambda met: True, tenant_id, start, end, zone)


def sla_breaches_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _sla_daily(lambda met: not met, tenant_id, start, end, zone)


# --- handoffs and returns --------------------------------------------------------------------


def _handoff_counts(day_field: str, where: Q, start, end, zone) -> DailyValues:
    lo, hi = bounds(start, end, zone)
    rows = Handoff.objects.filter(where, **{f"{day_field}__gte": lo, f"{day_field}__lt": hi})
    return attributed_daily(
        rows,
        day_field=day_field,
        zone=zone,
        rep="owner_id",
        team=team_on("owner_id", day_field, zone),
        source="lead__source",
        value=Count("id"),
    )


def handoffs_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _handoff_counts("handed_at", Q(), start, end, zone)


def returns_daily(*, tenant_id: int, start, end, zone) -> DailyValues:
    return _handoff_counts("returned_at", Q(state=HandoffState.RETURNED), start, end, zone)


# --- the registry ----------------------------------------------------------------------------

_BY_MQL = {
    "tenant": "every MQL first touched",
    "team": "the MQL assignee's team on the fact's day",
    "rep": "the member of the lead's MQL assignment, else its owner at the transition",
    "source": "the lead's source",
}
_BY_HANDOFF = {
    "tenant": "every handoff",
    "team": "the handoff owner's team on the fact's day",
    "rep": "the handoff's owner",
    "source": "the lead's source",
}
_SPEED = int(DirtyKind.ACTIVITIES | DirtyKind.TRANSITIONS | HANDOFF_KIND)
_SQL = "handoff.Handoff"
_MQL = "pipeline.StageTransition (into mql), pipeline.Activity, handoff.Assignment"

MEASURES = (
    Measure(
        key="speed_to_lead_seconds", description=(
            "Business seconds from a lead's transition into mql to its first call or e-mail, "
            "on the touch's day."
        ), dirty_kinds=_SPEED, source=_MQL, attribution=_BY_MQL,
        daily=speed_to_lead_seconds_daily, related_days=speed_to_lead_related_days,
    ),
    Measure(
        key="mqls_first_touched", description="MQLs first touched (call or e-mail), by touch day.",
        dirty_kinds=_SPEED, source=_MQL, attribution=_BY_MQL, daily=mqls_first_touched_daily,
        related_days=speed_to_lead_related_days,
    ),
    Measure(
        key="handoff_sla_met",
        description="SQL handoffs decided within their SLA, by deadline day.",
        dirty_kinds=int(HANDOFF_KIND), source=_SQL, attribution=_BY_HANDOFF, daily=sla_met_daily,
        span=sla_span,
    ),
    Measure(
        key="handoff_sla_due", description=(
            "SQL handoffs whose SLA outcome is known (met + breached), by deadline day."
        ), dirty_kinds=int(HANDOFF_KIND), source=_SQL, attribution=_BY_HANDOFF,
        daily=sla_due_daily, span=sla_span,
    ),
    Measure(
        key="handoff_sla_breaches",
        description="SQL handoffs that breached their SLA, by deadline day.",
        dirty_kinds=int(HANDOFF_KIND), source=_SQL, attribution=_BY_HANDOFF,
        daily=sla_breaches_daily, span=sla_span,
    ),
    Measure(
        key="handoffs", description="SQL handoffs to field sales, by handoff day.",
        dirty_kinds=int(HANDOFF_KIND), source=_SQL, attribution=_BY_HANDOFF, daily=handoffs_daily,
    ),
    Measure(
        key="handoff_returns", description="SQL handoffs returned (戻し), by return day.",
        dirty_kinds=int(HANDOFF_KIND), source=_SQL, attribution=_BY_HANDOFF, daily=returns_daily,
    ),
)  # fmt: skip

KPIS = (
    KpiDefinition(
        "handoff_speed_to_lead", "平均スピード・トゥ・リード（営業秒）",  # noqa: RUF001
        "Average speed to lead (business seconds)", Category.ACTIVITY, Layer.QUALITY,
        numerator="speed_to_lead_seconds", denominator="mqls_first_touched", unit=Unit.RATIO,
        direction=Direction.LOWER_IS_BETTER,
        description=(
            "Business seconds from MQL to the first call or e-mail ÷ MQLs first touched, "
            "by the touch's day."
        ),
    ),
    KpiDefinition(
        "handoff_sla_attainment", "引き渡しSLA達成率", "Handoff SLA attainment",
        Category.OUTCOME, Layer.QUALITY, numerator="handoff_sla_met",
        denominator="handoff_sla_due", unit=Unit.PERCENT,
        description=(
            "SQL handoffs accepted or returned within the SLA ÷ those met or breached x 100, "
            "by deadline day."
        ),
    ),
    KpiDefinition(
        "handoff_sla_breaches", "引き渡しSLA超過数", "Handoff SLA breaches", Category.OUTCOME,
        Layer.RESULT, numerator="handoff_sla_breaches", direction=Direction.LOWER_IS_BETTER,
        description="SQL handoffs not accepted or returned within the SLA, by deadline day.",
    ),
    KpiDefinition(
        "handoff_return_rate", "戻し率", "Handoff return rate", Category.OUTCOME, Layer.QUALITY,
        numerator="handoff_returns", denominator="handoffs", unit=Unit.PERCENT,
        direction=Direction.LOWER_IS_BETTER,
        description="SQL handoffs returned ÷ SQL handoffs x 100 (each by its own day).",
    ),
)  # fmt: skip


def register() -> None:
    """Called from HandoffConfig.ready (idempotent)."""
    for measure in MEASURES:
        register_measure(measure)
    for kpi in KPIS:
        register_kpi(kpi)
