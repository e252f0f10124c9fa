"""Funnel analysis (ファネル分析): stage counts, conversion, drop-off, median stage times.

The funnel is lead → mql → sql → meeting → opportunity → won, with lost and recycled as side
counts. Two modes:

- period: `lead` counts the leads created in the period; every other stage counts the
  transitions into it whose time falls in the period (a lead that re-enters a stage after
  `recycled` counts again, and a step can exceed the one before it). The median time of a
  stage is taken per transition: its time minus the same lead's latest entry into the
  previous stage strictly before it (the lead's creation for mql); transitions with no such
  entry are left out.
- cohort: the leads created in the period; a stage counts the cohort leads that ever entered
  it (distinct leads, at any time, even after the period). The median time is taken per
  lead: its first entry into the stage minus its first entry into the previous stage (its
  creation for mql); leads that lack that entry are left out.

Beside it, each stage after `lead` has the median time from the lead's creation: per
transition in period mode (its time minus the lead's creation), per lead in cohort mode (its
first entry into the stage minus its creation); an entry not after the creation is left out,
as for mql's time from the previous stage, so mql's two medians are equal.

Periods are half-open [start, end) between the tenant's local midnights. Rates are exact
percentages (x 100), null when the denominator is 0; the API rounds them when shown.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import connections, router
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    F,
    Func,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)

from kpis import data_generations, funnel_store
from kpis.aggregates import team_on
from kpis.numbers import ratio
from kpis.periods import Period
from kpis.scopes import NO_SOURCE_LABEL, KpiScope, ScopeType
from kpis.snapshots.daily_sql import local_settings
from pipeline.lifecycle import FUNNEL_ORDER, Stage
from pipeline.models import DirtyKind, Lead, StageTransition
from tenants.context import tenant_context
from tenants.errors import ValidationFailed
from tenants.models import Membership, Team, Tenant

SIDE_STAGES: tuple[str, ...] = (Stage.LOST, Stage.RECYCLED)
# Each funnel stage after `lead`, with the stage before it.
_STEPS: tuple[tuple[str, str], ...] = tuple(zip(FUNNEL_ORDER[1:], FUNNEL_ORDER[:-1], strict=True))
_MICROSECOND = dt.timedelta(microseconds=1)
_MICROSECONDS_PER_SECOND = Decimal(1_000_000)
# What a funnel reads: leads (created, owner, source) and stage transitions. Members' teams
# too, whose changes ask for a rebuild, which data_version also waits for.
FUNNEL_DATA = DirtyKind.LEADS | DirtyKind.TRANSITIONS


class FunnelMode(StrEnum):
    PERIOD = "period"
    COHORT = "cohort"


class FunnelBreakdown(StrEnum):
    SOURCE = "source"
    TEAM = "team"
    REP = "rep"


GroupKey = int | str | None


@dataclass(frozen=True)
class FunnelStep:
    """One stage of a funnel; conversions are exact percentages, null for a zero denominator."""

    stage: str
    count: int
    step_conversion: Decimal | None
    overall_conversion: Decimal | None
    drop_off: int | None
    median_seconds_from_previous: Decimal | None
    median_seconds_from_creation: Decimal | None = None


@dataclass(frozen=True)
class FunnelGroup:
    """The funnel of one breakdown group (the whole scope when there is no breakdown).

    `key` is None without a breakdown, the Team or Membership pk for a team or rep
    breakdown, and the lead source string for a source breakdown.
    """

    key: GroupKey
    label: str | None
    steps: tuple[FunnelStep, ...]
    lost: int
    recycled: int


@dataclass(frozen=True)
class FunnelResult:
    """A funnel of one period, and the same funnel of the comparison period if asked."""

    period: Period
    mode: FunnelMode
    scope: KpiScope
    breakdown: FunnelBreakdown | None
    groups: tuple[FunnelGroup, ...]
    comparison: FunnelResult | None = None


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=dict)
    # Durations in whole microseconds, per stage: from the previous stage, from creation.
    durations: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    from_creation: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


# What a breakdown groups by. Leads created in a period group by their owner then and that
# member's team on the creation day (period mode), cohorts by the lead's current owner and
# that member's current team; either by the lead's source. Period transitions group by their
# owner and team at the time of the change (kept equal to the team history).
# The owner field of a lead: "created_owner" or "owner".
def _lead_group_fields(owner: str) -> dict[FunnelBreakdown, str]:
    return {
        FunnelBreakdown.SOURCE: "source",
        FunnelBreakdown.TEAM: f"{owner}__team_id",
        FunnelBreakdown.REP: f"{owner}_id",
    }


_TRANSITION_GROUP_FIELD: dict[FunnelBreakdown, str] = {
    FunnelBreakdown.SOURCE: "lead__source",
    FunnelBreakdown.TEAM: "team_id",
    FunnelBreakdown.REP: "owner_id",
}


def _scope_pk(scope: KpiScope) -> int:
    try:
        return int(scope.key)
    except ValueError as exc:
        raise ValidationFailed(f"Not a {scope.type} id: {scope.key!r}.", field="scope") from exc


def _lead_scope_q(scope: KpiScope, *, owner: str, prefix: str = "") -> Q:
    """Leads in `scope` by their `owner` field, that member's team, or their source."""
    if scope.type == ScopeType.TEAM:
        return Q(**{f"{prefix}{owner}__team_id": _scope_pk(scope)})
    if scope.type == ScopeType.REP:
        return Q(**{f"{prefix}{owner}_id": _scope_pk(scope)})
    if scope.type == ScopeType.SOURCE:
        return Q(**{f"{prefix}source": scope.key})
    return Q()


def _transition_scope_q(scope: KpiScope) -> Q:
    """Transitions in `scope` by the owner at the time, that owner's team, or the source."""
    if scope.type == ScopeType.TEAM:
        # NOTE: an unassigned lead's transition carries the lead's team, but unassigned
        # leads count only in the tenant and source scopes.
        return Q(owner__isnull=False, team_id=_scope_pk(scope))
    if scope.type == ScopeType.REP:
        return Q(owner_id=_scope_pk(scope))
    if scope.type == ScopeType.SOURCE:
        return Q(lead__source=scope.key)
    return Q()


def _group_field(
    breakdown: FunnelBreakdown | None, fields: Mapping[FunnelBreakdown, str], *, prefix: str = ""
) -> str | None:
    return None if breakdown is None else prefix + fields[breakdown]


def _only_grouped(
    queryset: QuerySet[Any], breakdown: FunnelBreakdown | None, group_field: str | None
) -> QuerySet[Any]:
    """Rows without a team or rep belong to no group of a team or rep breakdown."""
    if group_field is None or breakdown not in (FunnelBreakdown.TEAM, FunnelBreakdown.REP):
        return queryset
    return queryset.filter(**{f"{group_field}__isnull": False})


def _count_by(
    queryset: QuerySet[Any], *, by: list[str], group_field: str | None, count: Count
) -> list[dict[str, Any]]:
    """One aggregating query: `n` per value of `by` and the group (group_key None if none)."""
    if group_field is not None:
        return list(queryset.values(*by, group_key=F(group_field)).annotate(n=count).order_by())
    if by:
        return [
            {**row, "group_key": None} for row in queryset.values(*by).annotate(n=count).order_by()
        ]
    return [{"group_key": None, **queryset.aggregate(n=count)}]


def _microseconds(later: dt.datetime, earlier: dt.datetime) -> int:
    return (later - earlier) // _MICROSECOND


class _EpochMicroseconds(Func):
    """PostgreSQL: a time as whole microseconds since 1970, exact (EXTRACT gives a numeric).

    NOTE: tens of thousands of times are read per funnel; as integers they load many times
    faster than as datetimes, which Django converts one by one in Python.
    """

    template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"
    output_field = BigIntegerField()


@dataclass(frozen=True)
class _Clock:
    """How a query reads times and how two are subtracted into whole microseconds."""

    stamp: Callable[[Any], Any]
    minus: Callable[[Any, Any], int]


def _clock() -> _Clock:
    if connections[router.db_for_read(StageTransition)].vendor == "postgresql":
        return _Clock(stamp=_EpochMicroseconds, minus=operator.sub)
    return _Clock(stamp=lambda expression: expression, minus=_microseconds)


@contextmanager
def _no_jit() -> Iterator[None]:
    """PostgreSQL: no JIT for the block. The times query has a correlated subquery per
    stage, whose estimated cost passes the JIT threshold: compiling it took 0.9 s of the
    1.1 s the query took on a tenant of 187,000 transitions."""
    reads = connections[router.db_for_read(StageTransition)]  # a query's read replica
    if reads.vendor != "postgresql":
        yield
        return
    with reads.cursor() as cursor, local_settings(cursor, jit="off"):
        yield


def _count_leads_created(
    tallies: dict[GroupKey, _Tally],
    *,
    start: dt.datetime,
    end: dt.datetime,
    scope: KpiScope,
    breakdown: FunnelBreakdown | None,
    owner: str,
    team_of_the_day: bool = False,
) -> None:
    """The `lead` step of both modes: leads created in [start, end), in one query.

    `team_of_the_day`: the team is the owner's on the lead's local day (the team history,
    as the leads_created KPI counts it), else the owner's current team (cohorts)."""
    fields = _lead_group_fields(owner)
    leads = Lead.objects.all()
    if team_of_the_day:
        leads = leads.annotate(_team=team_on(f"{owner}_id", "created_at", start.tzinfo))
        fields = {**fields, FunnelBreakdown.TEAM: "_team"}
    if team_of_the_day and scope.type == ScopeType.TEAM:
        in_scope = Q(_team=_scope_pk(scope))
    else:
        in_scope = _lead_scope_q(scope, owner=owner)
    lead_field = _group_field(breakdown, fields)
    leads = _only_grouped(
        leads.filter(in_scope, created_at__gte=start, created_at__lt=end),
        breakdown,
        lead_field,
    )
    for row in _count_by(leads, by=[], group_field=lead_field, count=Count("pk")):
        if row["n"]:
            tallies[row["group_key"]].counts[Stage.LEAD] = row["n"]


def _period_tally(
    *, start: dt.datetime, end: dt.datetime, scope: KpiScope, breakdown: FunnelBreakdown | None
) -> dict[GroupKey, _Tally]:
    """Period mode: leads created and transitions made in [start, end), in three queries."""
    tallies: dict[GroupKey, _Tally] = defaultdict(_Tally)

    _count_leads_created(
        tallies,
        start=start,
        end=end,
        scope=scope,
        breakdown=breakdown,
        owner="created_owner",
        team_of_the_day=True,
    )

    transition_field = _group_field(breakdown, _TRANSITION_GROUP_FIELD)
    transitions = StageTransition.objects.filter(
        _transition_scope_q(scope), at__gte=start, at__lt=end
    )
    if breakdown == FunnelBreakdown.TEAM:
        transitions = transitions.filter(owner__isnull=False)
    transitions = _only_grouped(transitions, breakdown, transition_field)
    counted = transitions.filter(to_stage__in=[*FUNNEL_ORDER[1:], *SIDE_STAGES])
    for row in _count_by(counted, by=["to_stage"], group_field=transition_field, count=Count("pk")):
        tallies[row["group_key"]].counts[row["to_stage"]] = row["n"]

    # TRICKY: the entry into the previous stage may lie before the period (or the lead may
    # have entered it several times around a `recycled`), so it is looked up per transition
    # with a correlated subquery: the latest entry strictly before this one. Each CASE
    # branch has a constant stage, which the (tenant, lead, at) index serves.
    def latest_entry_into(stage: str) -> Subquery:
        return Subquery(
            StageTransition.objects.filter(
                lead_id=OuterRef("lead_id"), to_stage=stage, at__lt=OuterRef("at")
            )
            .order_by("-at")
            .values("at")[:1]
        )

    previous_at = Case(
        When(
            to_stage=Stage.MQL,
            lead__created_at__lt=F("at"),
            then=F("lead__created_at"),
        ),
        *(
            When(to_stage=stage, then=latest_entry_into(previous))
            for stage, previous in _STEPS
            if stage != Stage.MQL
        ),
        default=None,
        output_field=DateTimeField(),
    )
    clock = _clock()
    timed = (
        transitions.filter(to_stage__in=FUNNEL_ORDER[1:])
        .annotate(
            at_time=clock.stamp(F("at")),
            previous_time=clock.stamp(previous_at),
            created_time=clock.stamp(F("lead__created_at")),
        )
        .order_by()
    )
    group_values = [transition_field] if transition_field else []
    for row in timed.values("to_stage", "at_time", "previous_time", "created_time", *group_values):
        key = row[transition_field] if transition_field else None
        if row["created_time"] < row["at_time"]:
            tallies[key].from_creation[row["to_stage"]].append(
                clock.minus(row["at_time"], row["created_time"])
            )
        # NOTE: skipped here rather than in SQL, where the WHERE clause would repeat the
        # correlated subqueries.
        if row["previous_time"] is None:
            continue
        tallies[key].durations[row["to_stage"]].append(
            clock.minus(row["at_time"], row["previous_time"])
        )
    return tallies


def _cohort_tally(
    *, start: dt.datetime, end: dt.datetime, scope: KpiScope, breakdown: FunnelBreakdown | None
) -> dict[GroupKey, _Tally]:
    """Cohort mode: the leads created in [start, end) and every stage they ever entered."""
    tallies: dict[GroupKey, _Tally] = defaultdict(_Tally)

    _count_leads_created(
        tallies, start=start, end=end, scope=scope, breakdown=breakdown, owner="owner"
    )

    cohort_field = _group_field(breakdown, _lead_group_fields("owner"), prefix="lead__")
    transitions = _only_grouped(
        StageTransition.objects.filter(
            _lead_scope_q(scope, owner="owner", prefix="lead__"),
            lead__created_at__gte=start,
            lead__created_at__lt=end,
        ),
        breakdown,
        cohort_field,
    )
    counted = transitions.filter(to_stage__in=[*FUNNEL_ORDER[1:], *SIDE_STAGES])
    for row in _count_by(
        counted, by=["to_stage"], group_field=cohort_field, count=Count("lead_id", distinct=True)
    ):
        tallies[row["group_key"]].counts[row["to_stage"]] = row["n"]

    # Each cohort lead's first entry into each funnel stage, in one aggregating query.
    group_values = [cohort_field] if cohort_field else []
    clock = _clock()
    first_entries = (
        transitions.filter(to_stage__in=FUNNEL_ORDER[1:])
        .values(
            "lead_id", "to_stage", *group_values, created_time=clock.stamp(F("lead__created_at"))
        )
        .annotate(first_time=Min(clock.stamp(F("at"))))
        .order_by()
    )
    per_lead: dict[int, tuple[GroupKey, dict[str, Any]]] = {}
    for row in first_entries:
        key = row[cohort_field] if cohort_field else None
        _, firsts = per_lead.setdefault(row["lead_id"], (key, {Stage.LEAD: row["created_time"]}))
        firsts[row["to_stage"]] = row["first_time"]
    for key, firsts in per_lead.values():
        for stage, previous in _STEPS:
            entered, entered_previous = firsts.get(stage), firsts.get(previous)
            created = firsts[Stage.LEAD]
            if entered is not None and created < entered:
                tallies[key].from_creation[stage].append(clock.minus(entered, created))
            # NOTE: a lead can reach a stage before its first entry into the previous one
            # (recycled → sql, later → mql); it has no time from that previous stage, like
            # a lead that never entered it.
            if entered is None or entered_previous is None or entered_previous >= entered:
                continue
            tallies[key].durations[stage].append(clock.minus(entered, entered_previous))
    return tallies


def _median_seconds(durations: list[int]) -> Decimal | None:
    """The exact median in seconds; an even count averages the two middle values."""
    if not durations:
        return None
    ordered = sorted(durations)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        microseconds = Decimal(ordered[middle])
    else:
        microseconds = Decimal(ordered[middle - 1] + ordered[middle]) / 2
    return microseconds / _MICROSECONDS_PER_SECOND


def _group(key: GroupKey, label: str | None, tally: _Tally) -> FunnelGroup:
    leads = tally.counts.get(Stage.LEAD, 0)
    steps: list[FunnelStep] = []
    previous: int | None = None
    for stage in FUNNEL_ORDER:
        count = tally.counts.get(stage, 0)
        steps.append(
            FunnelStep(
                stage=str(stage),
                count=count,
                step_conversion=None
                if previous is None
                else ratio(count, previous, multiplier=100),
                overall_conversion=ratio(count, leads, multiplier=100),
                drop_off=None if previous is None else previous - count,
                median_seconds_from_previous=_median_seconds(tally.durations.get(stage, [])),
                median_seconds_from_creation=_median_seconds(tally.from_creation.get(stage, [])),
            )
        )
        previous = count
    return FunnelGroup(
        key=key,
        label=label,
        steps=tuple(steps),
        lost=tally.counts.get(Stage.LOST, 0),
        recycled=tally.counts.get(Stage.RECYCLED, 0),
    )


def _labels(breakdown: FunnelBreakdown | None, keys: Iterable[GroupKey]) -> dict[GroupKey, str]:
    """Readable names of the groups: team name, member display name or username, source."""
    keys = set(keys)
    if breakdown == FunnelBreakdown.TEAM:
        return dict(Team.objects.filter(pk__in=keys).values_list("pk", "name"))
    if breakdown == FunnelBreakdown.REP:
        return {
            pk: display_name or username
            for pk, display_name, username in Membership.objects.filter(pk__in=keys).values_list(
                "pk", "display_name", "user__username"
            )
        }
    if breakdown == FunnelBreakdown.SOURCE:
        return {key: str(key) or NO_SOURCE_LABEL for key in keys}
    return {}


def _tally(
    *,
    tenant: Tenant,
    period: Period,
    mode: FunnelMode,
    scope: KpiScope,
    breakdown: FunnelBreakdown | None,
) -> dict[GroupKey, _Tally]:
    start, end = period.bounds(tenant.timezone)
    compute = _cohort_tally if mode == FunnelMode.COHORT else _period_tally
    tallies = compute(start=start, end=end, scope=scope, breakdown=breakdown)
    if breakdown is None:
        # Without a breakdown there is exactly one group, even when it is empty.
        tallies.setdefault(None, _Tally())
    return tallies


def _groups(
    *,
    tenant: Tenant,
    period: Period,
    mode: FunnelMode,
    scope: KpiScope,
    breakdown: FunnelBreakdown | None,
) -> dict[GroupKey, FunnelGroup]:
    """Each group's funnel, unlabelled (labels are read per request)."""
    with _no_jit():
        tallies = _tally(tenant=tenant, period=period, mode=mode, scope=scope, breakdown=breakdown)
    return {key: _group(key, None, tally) for key, tally in tallies.items()}


def _result(
    *,
    period: Period,
    mode: FunnelMode,
    scope: KpiScope,
    breakdown: FunnelBreakdown | None,
    unlabelled: dict[GroupKey, FunnelGroup],
    labels: dict[GroupKey, str],
    comparison: FunnelResult | None = None,
) -> FunnelResult:
    groups = sorted(
        (replace(group, label=labels.get(key)) for key, group in unlabelled.items()),
        key=lambda group: ((group.label or "").casefold(), str(group.key)),
    )
    return FunnelResult(
        period=period,
        mode=mode,
        scope=scope,
        breakdown=breakdown,
        groups=tuple(groups),
        comparison=comparison,
    )


def funnel_compute(
    *,
    tenant: Tenant,
    period: Period,
    mode: FunnelMode = FunnelMode.PERIOD,
    scope: KpiScope | None = None,
    breakdown: FunnelBreakdown | None = None,
    comparison_period: Period | None = None,
) -> FunnelResult:
    """The funnel of `tenant` for `period`, and for `comparison_period` when given.

    Scope and breakdown: in period mode leads created count for the lead's owner when it
    was created, that member's team on the creation day (team history) and the lead's
    source; transitions count for their owner at the time of the change and, when that
    owner is set, the team recorded with the change (kept equal to the history).
    In cohort mode every cohort lead (and all its transitions) is attributed by the lead's
    current owner, that owner's current team and its source.
    Unassigned leads count only in the tenant and source scopes. A breakdown lists the
    groups that have data, ordered by label; without one there is a single group with key
    None.

    A constant number of queries, whatever the number of leads or groups: one for the data
    version, three per funnel computed (leads, transition counts, times between stages) and
    one for the group labels. A funnel computed while no lead or transition change awaits
    its refresh is kept under the data's version (kpis.funnel_store) and served from there,
    without a query, until the data changes.
    """
    scope = scope or KpiScope.tenant()
    mode = FunnelMode(mode)
    breakdown = None if breakdown is None else FunnelBreakdown(breakdown)
    with tenant_context(tenant):
        version = data_generations.data_version(tenant=tenant, kinds=FUNNEL_DATA)

        def groups_of(of: Period) -> dict[GroupKey, FunnelGroup]:
            return funnel_store.funnel_groups_cached(
                tenant=tenant,
                version=version,
                period=of,
                mode=mode,
                scope=scope,
                breakdown=breakdown,
                compute=lambda: _groups(
                    tenant=tenant, period=of, mode=mode, scope=scope, breakdown=breakdown
                ),
            )

        groups = groups_of(period)
        compared = None if comparison_period is None else groups_of(comparison_period)
        labels = _labels(breakdown, [*groups, *(compared or {})])
    comparison = (
        None
        if comparison_period is None or compared is None
        else _result(
            period=comparison_period,
            mode=mode,
            scope=scope,
            breakdown=breakdown,
            unlabelled=compared,
            labels=labels,
        )
    )
    return _result(
        period=period,
        mode=mode,
        scope=scope,
        breakdown=breakdown,
        unlabelled=groups,
        labels=labels,
        comparison=comparison,
    )
