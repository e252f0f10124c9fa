"""The funnel analysis: counts, conversions, drop-offs and medians in both modes, and its API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from strawberry import relay

from kpis.funnels import FunnelBreakdown, FunnelGroup, FunnelMode, FunnelResult, funnel_compute
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from pipeline import services
from pipeline.lifecycle import Stage
from tests.factories import MembershipFactory, TeamFactory, UserFactory, api_token
from tests.pipeline.factories import LeadFactory

TOKYO = ZoneInfo("Asia/Tokyo")
MQL, SQL, MEETING, OPPORTUNITY, WON = (
    Stage.MQL,
    Stage.SQL,
    Stage.MEETING,
    Stage.OPPORTUNITY,
    Stage.WON,
)


def jst(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TOKYO)


def pct(numerator: int, denominator: int) -> Decimal:
    return Decimal(numerator) * 100 / Decimal(denominator)


# --- data --------------------------------------------------------------------------------


@pytest.fixture
def sam(tenant_a: Any, west: Any) -> Any:
    """A rep of team West with a display name."""
    return MembershipFactory(
        tenant=tenant_a,
        user=UserFactory(username="sam", password=None),
        team=west,
        display_name="Sam S.",
    )


def lead_with(
    tenant: Any,
    *,
    created_at: dt.datetime,
    source: str = "",
    owner: Any = None,
    team: Any = None,
    path: tuple[tuple[str, dt.datetime], ...] = (),
) -> Any:
    lead = LeadFactory(
        tenant=tenant,
        created_at=created_at,
        source=source,
        owner=owner,
        team=team if team is not None else getattr(owner, "team", None),
    )
    for stage, at in path:
        services.lead_transition(lead=lead, to_stage=stage, at=at)
    return lead


@pytest.fixture
def april(tenant_a: Any, rita: Any, sam: Any, west: Any) -> dict[str, Any]:
    """Six leads around April 2025 (JST), each commented with what it tests."""
    return {
        # Created 00:30 JST on 1 April (15:30 UTC on 31 March): an April lead.
        "l1": lead_with(
            tenant_a,
            created_at=jst(4, 1, 0, 30),
            source="web",
            owner=rita,
            path=(
                (MQL, jst(4, 1, 1, 30)),
                (SQL, jst(4, 2, 1, 30)),
                (MEETING, jst(4, 3, 1, 30)),
                (OPPORTUNITY, jst(4, 5, 1, 30)),
                (WON, jst(4, 10, 1, 30)),
            ),
        ),
        # Recycled after sql, then re-enters mql and sql: each entry counts in period mode.
        "l2": lead_with(
            tenant_a,
            created_at=jst(4, 2, 10),
            source="web",
            owner=rita,
            path=(
                (MQL, jst(4, 2, 12)),
                (SQL, jst(4, 3, 12)),
                (Stage.RECYCLED, jst(4, 4, 12)),
                (MQL, jst(4, 5, 12)),
                (SQL, jst(4, 6, 18)),
            ),
        ),
        # mql at 23:30 JST on 30 April (April); sql at 00:00 JST on 1 May (May).
        "l3": lead_with(
            tenant_a,
            created_at=jst(4, 10, 10),
            source="event",
            owner=sam,
            path=((MQL, jst(4, 30, 23, 30)), (SQL, jst(5, 1, 0, 0))),
        ),
        # Created in March, unassigned but with team West (its transitions carry that team,
        # which must not count for the team); its mql was in March, the rest in April.
        "l4": lead_with(
            tenant_a,
            created_at=jst(3, 25, 10),
            source="event",
            team=west,
            path=(
                (MQL, jst(3, 28, 10)),
                (SQL, jst(4, 8, 10)),
                (MEETING, jst(4, 9, 11)),
                (OPPORTUNITY, jst(4, 12, 10)),
                (Stage.LOST, jst(4, 15, 10)),
            ),
        ),
        # Created at 00:00 JST on 1 May: a May lead.
        "l5": lead_with(tenant_a, created_at=jst(5, 1), source="web", owner=sam),
        # Unassigned, no source, no transitions.
        "l6": lead_with(tenant_a, created_at=jst(4, 20, 10)),
    }


Row = tuple[str, int, Decimal | None, Decimal | None, int | None, Decimal | None]


def rows(group: FunnelGroup) -> list[Row]:
    return [
        (
            step.stage,
            step.count,
            step.step_conversion,
            step.overall_conversion,
            step.drop_off,
            step.median_seconds_from_previous,
        )
        for step in group.steps
    ]


def counts(result: FunnelResult) -> dict[Any, tuple[int, ...]]:
    """Per group key: the step counts, then lost and recycled."""
    return {
        group.key: (*(step.count for step in group.steps), group.lost, group.recycled)
        for group in result.groups
    }


def compute(tenant: Any, label: str, **kwargs: Any) -> FunnelResult:
    return funnel_compute(tenant=tenant, period=parse_period(label), **kwargs)


D = Decimal

# --- period mode -------------------------------------------------------------------------


def test_period_mode_counts_leads_created_and_transitions_made_in_the_period(tenant_a, april):
    # when
    result = compute(tenant_a, "2025-04")
    # then leads L1, L2, L3, L6; L2's two mql and sql entries count twice; L4's sql onwards
    # count though it was created in March; L3's sql (00:00 JST 1 May) is May's
    (group,) = result.groups
    assert (group.key, group.label, group.lost, group.recycled) == (None, None, 1, 1)
    assert rows(group) == [
        ("lead", 4, None, D(100), None, None),
        # (3600 + 7200 + 266400 + 1776600): the even count averages 7200 and 266400
        ("mql", 4, D(100), D(100), 0, D(136800)),
        # 86400, 86400, 108000 (L2's re-entry, from its latest mql) and 950400 (L4, from
        # its mql in March)
        ("sql", 4, D(100), D(100), 0, D(97200)),
        ("meeting", 2, D(50), D(50), 2, D(88200)),
        ("opportunity", 2, D(100), D(50), 0, D(214200)),
        ("won", 1, D(50), D(25), 1, D(432000)),
    ]
    assert result.comparison is None
    assert (result.mode, result.breakdown) == (FunnelMode.PERIOD, None)


def test_period_mode_step_can_exceed_the_previous_one(tenant_a, april, rita):
    # when rita's funnel is computed (L1 and L2, L2 entering mql twice)
    result = compute(tenant_a, "2025-04", scope=KpiScope.rep(rita.pk))
    # then mql exceeds the leads: 150 % with a negative drop-off; odd counts take the middle
    (group,) = result.groups
    assert rows(group) == [
        ("lead", 2, None, D(100), None, None),
        ("mql", 3, D(150), D(150), -1, D(7200)),
        ("sql", 3, D(100), D(150), 0, D(86400)),
        ("meeting", 1, pct(1, 3), D(50), 2, D(86400)),
        ("opportunity", 1, D(100), D(50), 0, D(172800)),
        ("won", 1, D(100), D(50), 0, D(432000)),
    ]
    assert (group.lost, group.recycled) == (0, 1)


def test_period_mode_zero_denominators_are_null(tenant_a, april):
    # when a month with no data is computed
    (group,) = compute(tenant_a, "2025-06").groups
    # then every rate is null (not 0), drop-offs are 0 and there is no median
    assert rows(group) == [
        ("lead", 0, None, None, None, None),
        *(
            (stage, 0, None, None, 0, None)
            for stage in ("mql", "sql", "meeting", "opportunity", "won")
        ),
    ]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        # 23:30 JST on 30 April is that JST day; 00:00 JST on 1 May is the next one
        ("2025-04-30", (0, 1, 0, 0, 0, 0, 0, 0)),
        ("2025-05-01", (1, 0, 1, 0, 0, 0, 0, 0)),
        ("2025-05", (1, 0, 1, 0, 0, 0, 0, 0)),
        # 00:30 JST on 1 April is 15:30 UTC on 31 March, yet an April event
        ("2025-04-01", (1, 1, 0, 0, 0, 0, 0, 0)),
        ("2025-03", (1, 1, 0, 0, 0, 0, 0, 0)),
    ],
)
def test_periods_are_tenant_local_days(tenant_a, april, label, expected):
    assert counts(compute(tenant_a, label)) == {None: expected}


def test_median_of_an_even_count_can_be_a_fraction_of_a_second(tenant_a):
    # given two leads reaching mql 1 s and 2 s after creation
    for seconds in (1, 2):
        start = jst(4, 1, 9)
        lead_with(tenant_a, created_at=start, path=((MQL, start + dt.timedelta(seconds=seconds)),))
    # then the median is exactly 1.5 s
    (group,) = compute(tenant_a, "2025-04").groups
    assert group.steps[1].median_seconds_from_previous == D("1.5")


def test_transition_at_the_creation_instant_has_no_time_from_the_previous_stage(tenant_a):
    # given a lead imported already at mql (same instant), and one that took an hour
    lead_with(tenant_a, created_at=jst(4, 1, 9), path=((MQL, jst(4, 1, 9)),))
    lead_with(tenant_a, created_at=jst(4, 1, 9), path=((MQL, jst(4, 1, 10)),))
    # then both count, but only the second has a time (strictly before)
    (group,) = compute(tenant_a, "2025-04").groups
    assert (group.steps[1].count, group.steps[1].median_seconds_from_previous) == (2, D(3600))


# --- cohort mode -------------------------------------------------------------------------


def test_cohort_mode_counts_distinct_leads_that_ever_reached_each_stage(tenant_a, april):
    # when
    result = compute(tenant_a, "2025-04", mode=FunnelMode.COHORT)
    # then the cohort is L1, L2, L3, L6; L2 counts once per stage; L3's sql in May counts;
    # L4 (created in March) is not in it
    (group,) = result.groups
    assert (group.lost, group.recycled) == (0, 1)
    assert rows(group) == [
        ("lead", 4, None, D(100), None, None),
        # first entries: 3600 (L1), 7200 (L2's first mql), 1776600 (L3)
        ("mql", 3, D(75), D(75), 1, D(7200)),
        # 86400 (L1), 86400 (L2's first sql - first mql), 1800 (L3)
        ("sql", 3, D(100), D(75), 0, D(86400)),
        ("meeting", 1, pct(1, 3), D(25), 2, D(86400)),
        ("opportunity", 1, D(100), D(25), 0, D(172800)),
        ("won", 1, D(100), D(25), 0, D(432000)),
    ]


def test_cohort_of_the_previous_month_follows_its_leads_into_april(tenant_a, april):
    # when March's cohort (L4 only) is computed
    (group,) = compute(tenant_a, "2025-03", mode=FunnelMode.COHORT).groups
    # then its April transitions count
    assert rows(group) == [
        ("lead", 1, None, D(100), None, None),
        ("mql", 1, D(100), D(100), 0, D(259200)),
        ("sql", 1, D(100), D(100), 0, D(950400)),
        ("meeting", 1, D(100), D(100), 0, D(90000)),
        ("opportunity", 1, D(100), D(100), 0, D(255600)),
        ("won", 0, D(0), D(0), 1, None),
    ]
    assert (group.lost, group.recycled) == (1, 0)


def test_cohort_median_leaves_out_leads_that_entered_the_previous_stage_later(tenant_a):
    # given a lead recycled straight to sql (no mql before it), later back at mql
    lead_with(
        tenant_a,
        created_at=jst(4, 1, 9),
        path=(
            (Stage.RECYCLED, jst(4, 1, 10)),
            (SQL, jst(4, 1, 11)),
            (Stage.RECYCLED, jst(4, 1, 12)),
            (MQL, jst(4, 1, 13)),
        ),
    )
    # then it counts at mql and sql, with a time only for mql (4 h from creation)
    (group,) = compute(tenant_a, "2025-04", mode=FunnelMode.COHORT).groups
    assert rows(group)[1:3] == [
        ("mql", 1, D(100), D(100), 0, D(14400)),
        ("sql", 1, D(100), D(100), 0, None),
    ]


# --- scope and breakdown -----------------------------------------------------------------


def test_breakdown_by_rep_uses_the_owner_at_the_time(tenant_a, april, rita, sam):
    # when
    result = compute(tenant_a, "2025-04", breakdown=FunnelBreakdown.REP)
    # then unassigned L4 and L6 are in no group; groups are ordered by label
    assert [(group.key, group.label) for group in result.groups] == [
        (rita.pk, "rita"),
        (sam.pk, "Sam S."),
    ]
    assert counts(result) == {
        rita.pk: (2, 3, 3, 1, 1, 1, 0, 1),
        sam.pk: (1, 1, 0, 0, 0, 0, 0, 0),
    }
    assert rows(result.groups[1]) == [
        ("lead", 1, None, D(100), None, None),
        ("mql", 1, D(100), D(100), 0, D(1776600)),
        ("sql", 0, D(0), D(0), 1, None),
        ("meeting", 0, None, D(0), 0, None),
        ("opportunity", 0, None, D(0), 0, None),
        ("won", 0, None, D(0), 0, None),
    ]


def test_breakdown_by_team_counts_transitions_only_when_they_had_an_owner(
    tenant_a, april, east, west
):
    # when
    result = compute(tenant_a, "2025-04", breakdown=FunnelBreakdown.TEAM)
    # then L4's transitions (team West, no owner) are not West's
    assert [(group.key, group.label) for group in result.groups] == [
        (east.pk, "IS East"),
        (west.pk, "IS West"),
    ]
    assert counts(result) == {
        east.pk: (2, 3, 3, 1, 1, 1, 0, 1),
        west.pk: (1, 1, 0, 0, 0, 0, 0, 0),
    }


def test_breakdown_by_source_includes_unassigned_leads(tenant_a, april):
    # when
    result = compute(tenant_a, "2025-04", breakdown=FunnelBreakdown.SOURCE)
    # then
    assert [(group.key, group.label) for group in result.groups] == [
        ("", "(no source)"),
        ("event", "event"),
        ("web", "web"),
    ]
    assert counts(result) == {
        "": (1, 0, 0, 0, 0, 0, 0, 0),
        "event": (1, 1, 1, 1, 1, 0, 1, 0),
        "web": (2, 3, 3, 1, 1, 1, 0, 1),
    }


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (lambda f: KpiScope.team(f["west"].pk), (1, 1, 0, 0, 0, 0, 0, 0)),
        (lambda f: KpiScope.team(f["east"].pk), (2, 3, 3, 1, 1, 1, 0, 1)),
        (lambda f: KpiScope.rep(f["sam"].pk), (1, 1, 0, 0, 0, 0, 0, 0)),
        (lambda f: KpiScope.source("event"), (1, 1, 1, 1, 1, 0, 1, 0)),
        (lambda f: KpiScope.source(""), (1, 0, 0, 0, 0, 0, 0, 0)),
    ],
)
def test_scope_filters_the_funnel(tenant_a, april, east, west, sam, scope, expected):
    fixtures = {"east": east, "west": west, "sam": sam}
    result = compute(tenant_a, "2025-04", scope=scope(fixtures))
    assert counts(result) == {None: expected}


def test_a_scope_and_a_breakdown_combine(tenant_a, april, rita):
    result = compute(
        tenant_a, "2025-04", scope=KpiScope.source("web"), breakdown=FunnelBreakdown.REP
    )
    assert counts(result) == {rita.pk: (2, 3, 3, 1, 1, 1, 0, 1)}


def test_reassigned_lead_period_by_owner_then_cohort_by_current_owner(tenant_a, rita, sam):
    # given a lead that reached mql under rita and sql after moving to sam
    lead = lead_with(tenant_a, created_at=jst(4, 1, 10), owner=rita, path=((MQL, jst(4, 2, 10)),))
    services.lead_update(lead=lead, owner=sam)
    services.lead_transition(lead=lead, to_stage=SQL, at=jst(4, 3, 10))
    # when
    period = compute(tenant_a, "2025-04", breakdown=FunnelBreakdown.REP)
    cohort = compute(tenant_a, "2025-04", mode=FunnelMode.COHORT, breakdown=FunnelBreakdown.REP)
    teams = compute(tenant_a, "2025-04", breakdown=FunnelBreakdown.TEAM)
    # then the period funnel splits the lead's history between its owners at the time,
    # its creation counting for rita, its owner then (sam's sql has no lead: null rates)
    assert counts(period) == {
        rita.pk: (1, 1, 0, 0, 0, 0, 0, 0),
        sam.pk: (0, 0, 1, 0, 0, 0, 0, 0),
    }
    assert rows(period.groups[0])[1] == ("mql", 1, D(100), D(100), 0, D(86400))
    assert rows(period.groups[1])[2] == ("sql", 1, None, None, -1, D(86400))
    assert counts(teams) == {
        rita.team_id: (1, 1, 0, 0, 0, 0, 0, 0),
        sam.team_id: (0, 0, 1, 0, 0, 0, 0, 0),
    }
    # and the cohort funnel follows the current owner
    assert counts(cohort) == {sam.pk: (1, 1, 1, 0, 0, 0, 0, 0)}


# --- comparison and tenancy ----------------------------------------------------------------


def test_comparison_with_the_previous_period(tenant_a, april):
    # when
    result = compute(tenant_a, "2025-04", comparison_period=parse_period("2025-03"))
    # then the March funnel (L4 created, its mql) comes with April's
    assert result.comparison is not None
    assert result.comparison.period.label == "2025-03"
    assert result.comparison.comparison is None
    (group,) = result.comparison.groups
    assert rows(group) == [
        ("lead", 1, None, D(100), None, None),
        ("mql", 1, D(100), D(100), 0, D(259200)),
        ("sql", 0, D(0), D(0), 1, None),
        ("meeting", 0, None, D(0), 0, None),
        ("opportunity", 0, None, D(0), 0, None),
        ("won", 0, None, D(0), 0, None),
    ]


def test_funnel_sees_only_its_tenant(tenant_a, tenant_b, april):
    # given a lead of tenant B in April
    lead_with(tenant_b, created_at=jst(4, 3, 10), path=((MQL, jst(4, 4, 10)),))
    # then each tenant sees its own
    assert counts(compute(tenant_b, "2025-04"))[None][:3] == (1, 1, 0)
    assert counts(compute(tenant_a, "2025-04"))[None][:3] == (4, 4, 4)


# --- query count ---------------------------------------------------------------------------


@pytest.fixture
def many_leads(request: pytest.FixtureRequest, tenant_a: Any) -> int:
    """n leads, each of its own rep, team and source, through the whole funnel."""
    n = request.param
    for index in range(n):
        team = TeamFactory(tenant=tenant_a)
        # NOTE: no password, so that no slow password hashing runs per rep.
        rep = MembershipFactory(tenant=tenant_a, team=team, user__password=None)
        start = jst(4, 1, 9) + index * dt.timedelta(minutes=10)
        lead_with(
            tenant_a,
            created_at=start,
            source=f"source-{index}",
            owner=rep,
            path=tuple(
                (stage, start + (step + 1) * dt.timedelta(hours=1))
                for step, stage in enumerate((MQL, SQL, MEETING, OPPORTUNITY, WON))
            ),
        )
    return n


# Per call: the tenant-context savepoint (and on PostgreSQL its two settings), the data
# version (kpis.versions), three queries per funnel (leads, transition counts, times
# between stages) for the period and the comparison period, and one for the group labels;
# on PostgreSQL two more per funnel computed (JIT off and back). The API adds token
# authentication.
SELECTOR_BUDGET = {"sqlite": 10, "postgresql": 16}
API_BUDGET = {"sqlite": 18, "postgresql": 30}


@pytest.mark.parametrize("many_leads", [2, 40], indirect=True)
def test_query_count_does_not_grow_with_leads_or_groups(
    tenant_a, many_leads, django_assert_max_num_queries
):
    for mode in FunnelMode:
        for breakdown in (None, *FunnelBreakdown):
            with django_assert_max_num_queries(SELECTOR_BUDGET[connection.vendor]):
                result = compute(
                    tenant_a,
                    "2025-04",
                    mode=mode,
                    breakdown=breakdown,
                    comparison_period=parse_period("2025-03"),
                )
            assert len(result.groups) == (1 if breakdown is None else many_leads)
            assert sum(group.steps[-1].count for group in result.groups) == many_leads
            assert {group.steps[-1].median_seconds_from_previous for group in result.groups} == {
                D(3600)
            }


# --- GraphQL -------------------------------------------------------------------------------

FUNNEL = """query($period: String!, $mode: FunnelMode, $scope: ScopeInput,
    $breakdown: FunnelBreakdown, $comparison: Comparison) {
  funnel(period: $period, mode: $mode, scope: $scope, breakdown: $breakdown,
         comparison: $comparison) {
    period { label start end } mode breakdown
    groups { key label lost recycled
      steps { stage count stepConversion overallConversion dropOff medianSecondsFromPrevious } }
    comparison { period { label } mode
      groups { key label lost recycled steps { stage count stepConversion dropOff } } }
  }
}"""


def gid(type_name: str, obj: Any) -> str:
    return relay.to_base64(type_name, obj.pk)


def test_funnel_over_graphql_with_the_previous_period(graphql, tenant_a, token_a, april):
    # when
    _, body = graphql(
        FUNNEL,
        {"period": "2025-04", "comparison": "PREVIOUS_PERIOD"},
        token=token_a,
    )
    # then rates are decimals rounded half up to 4 places, medians seconds
    assert body == {
        "data": {
            "funnel": {
                "period": {"label": "2025-04", "start": "2025-04-01", "end": "2025-05-01"},
                "mode": "PERIOD",
                "breakdown": None,
                "groups": [
                    {
                        "key": None,
                        "label": None,
                        "lost": 1,
                        "recycled": 1,
                        "steps": [
                            step("LEAD", 4, None, "100.0000", None, None),
                            step("MQL", 4, "100.0000", "100.0000", 0, 136800.0),
                            step("SQL", 4, "100.0000", "100.0000", 0, 97200.0),
                            step("MEETING", 2, "50.0000", "50.0000", 2, 88200.0),
                            step("OPPORTUNITY", 2, "100.0000", "50.0000", 0, 214200.0),
                            step("WON", 1, "50.0000", "25.0000", 1, 432000.0),
                        ],
                    }
                ],
                "comparison": {
                    "period": {"label": "2025-03"},
                    "mode": "PERIOD",
                    "groups": [
                        {
                            "key": None,
                            "label": None,
                            "lost": 0,
                            "recycled": 0,
                            "steps": [
                                {
                                    "stage": "LEAD",
                                    "count": 1,
                                    "stepConversion": None,
                                    "dropOff": None,
                                },
                                {
                                    "stage": "MQL",
                                    "count": 1,
                                    "stepConversion": "100.0000",
                                    "dropOff": 0,
                                },
                                {
                                    "stage": "SQL",
                                    "count": 0,
                                    "stepConversion": "0.0000",
                                    "dropOff": 1,
                                },
                                {
                                    "stage": "MEETING",
                                    "count": 0,
                                    "stepConversion": None,
                                    "dropOff": 0,
                                },
                                {
                                    "stage": "OPPORTUNITY",
                                    "count": 0,
                                    "stepConversion": None,
                                    "dropOff": 0,
                                },
                                {"stage": "WON", "count": 0, "stepConversion": None, "dropOff": 0},
                            ],
                        }
                    ],
                },
            }
        }
    }


def step(
    stage: str,
    count: int,
    step_conversion: str | None,
    overall: str | None,
    drop_off: int | None,
    median: float | None,
) -> dict[str, Any]:
    return {
        "stage": stage,
        "count": count,
        "stepConversion": step_conversion,
        "overallConversion": overall,
        "dropOff": drop_off,
        "medianSecondsFromPrevious": median,
    }


def test_cohort_breakdown_by_rep_over_graphql(graphql, tenant_a, token_a, april, rita, sam):
    # when
    _, body = graphql(
        FUNNEL,
        {"period": "2025-04", "mode": "COHORT", "breakdown": "REP"},
        token=token_a,
    )
    # then keys are Membership ids, and a third is rounded half up
    funnel = body["data"]["funnel"]
    assert (funnel["mode"], funnel["breakdown"], funnel["comparison"]) == ("COHORT", "REP", None)
    assert [(g["key"], g["label"]) for g in funnel["groups"]] == [
        (gid("Membership", rita), "rita"),
        (gid("Membership", sam), "Sam S."),
    ]
    assert [
        (s["stage"], s["count"], s["stepConversion"]) for s in funnel["groups"][0]["steps"]
    ] == [
        ("LEAD", 2, None),
        ("MQL", 2, "100.0000"),
        ("SQL", 2, "100.0000"),
        ("MEETING", 1, "50.0000"),
        ("OPPORTUNITY", 1, "100.0000"),
        ("WON", 1, "100.0000"),
    ]


def test_team_breakdown_and_scope_over_graphql(graphql, tenant_a, token_a, april, east, west):
    # when broken down by team, and scoped to West by its id
    _, by_team = graphql(FUNNEL, {"period": "2025-04", "breakdown": "TEAM"}, token=token_a)
    _, west_only = graphql(
        FUNNEL,
        {"period": "2025-04", "scope": {"type": "TEAM", "id": gid("Team", west)}},
        token=token_a,
    )
    # then
    assert [(g["key"], g["label"]) for g in by_team["data"]["funnel"]["groups"]] == [
        (gid("Team", east), "IS East"),
        (gid("Team", west), "IS West"),
    ]
    (group,) = west_only["data"]["funnel"]["groups"]
    assert [s["count"] for s in group["steps"]] == [1, 1, 0, 0, 0, 0]


def test_same_period_last_year_over_graphql(graphql, tenant_a, token_a, april):
    _, body = graphql(
        FUNNEL, {"period": "2025-04", "comparison": "SAME_PERIOD_LAST_YEAR"}, token=token_a
    )
    comparison = body["data"]["funnel"]["comparison"]
    assert comparison["period"] == {"label": "2024-04"}
    assert [s["count"] for s in comparison["groups"][0]["steps"]] == [0, 0, 0, 0, 0, 0]


def test_other_tenant_token_sees_none_of_the_data(graphql, tenant_a, token_b, april):
    _, body = graphql(FUNNEL, {"period": "2025-04", "breakdown": "SOURCE"}, token=token_b)
    assert body == {
        "data": {
            "funnel": {
                "period": {"label": "2025-04", "start": "2025-04-01", "end": "2025-05-01"},
                "mode": "PERIOD",
                "breakdown": "SOURCE",
                "groups": [],
                "comparison": None,
            }
        }
    }


@pytest.mark.parametrize("scope_type", ["TEAM", "REP"])
def test_other_tenant_team_or_rep_in_scope_is_not_found(
    graphql, tenant_a, tenant_b, token_b, april, west, sam, scope_type
):
    target = gid("Team", west) if scope_type == "TEAM" else gid("Membership", sam)
    _, body = graphql(
        FUNNEL,
        {"period": "2025-04", "scope": {"type": scope_type, "id": target}},
        token=token_b,
    )
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("NOT_FOUND", ["funnel"])
    ]


@pytest.mark.parametrize("label", ["2025-13", "April", "FY2025-Q5", ""])
def test_bad_period_label_is_a_validation_error(graphql, tenant_a, token_a, label):
    _, body = graphql(FUNNEL, {"period": label}, token=token_a)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION"]


def test_funnel_needs_the_kpis_read_scope(graphql, tenant_a, april):
    # given a token without kpis:read
    secret = api_token(tenant_a, "records:read", name="crm")
    # when
    _, body = graphql(FUNNEL, {"period": "2025-04"}, token=secret)
    # then nothing is returned
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["PERMISSION_DENIED"]


@pytest.mark.parametrize("many_leads", [2, 40], indirect=True)
def test_api_query_count_does_not_grow_with_leads(
    graphql, token_a, many_leads, django_assert_max_num_queries
):
    with django_assert_max_num_queries(API_BUDGET[connection.vendor]):
        _, body = graphql(
            FUNNEL,
            {"period": "2025-04", "breakdown": "REP", "comparison": "PREVIOUS_PERIOD"},
            token=token_a,
        )
    assert "errors" not in body, body
    assert len(body["data"]["funnel"]["groups"]) == many_leads


# --- median time from the lead's creation --------------------------------------------------


def from_creation(group: FunnelGroup) -> list[tuple[str, Decimal | None]]:
    return [(step.stage, step.median_seconds_from_creation) for step in group.steps]


def test_period_median_from_creation_is_per_transition(tenant_a, april):
    # when April is computed in period mode
    (group,) = compute(tenant_a, "2025-04").groups
    # then each April transition counts its time since its lead's creation (L4 since March)
    assert from_creation(group) == [
        ("lead", None),
        # 3600 (L1), 7200 (L2), 266400 (L2's second mql), 1776600 (L3): as from the previous
        ("mql", D(136800)),
        # 90000 (L1), 93600 and 374400 (L2's two), 1209600 (L4): (93600 + 374400) / 2
        ("sql", D(234000)),
        # 176400 (L1), 1299600 (L4)
        ("meeting", D(738000)),
        # 349200 (L1), 1555200 (L4)
        ("opportunity", D(952200)),
        ("won", D(781200)),
    ]


def test_cohort_median_from_creation_is_per_lead_first_entry(tenant_a, april):
    # when April's cohort (L1, L2, L3, L6) is computed
    (group,) = compute(tenant_a, "2025-04", mode=FunnelMode.COHORT).groups
    # then each lead's first entry counts once, even after the period (L3's sql in May)
    assert from_creation(group) == [
        ("lead", None),
        ("mql", D(7200)),  # 3600, 7200, 1776600
        ("sql", D(93600)),  # 90000, 93600 (L2's first sql), 1778400 (L3, 1 May 00:00)
        ("meeting", D(176400)),
        ("opportunity", D(349200)),
        ("won", D(781200)),
    ]
    # and March's cohort (L4) counts from its creation on 25 March
    (march,) = compute(tenant_a, "2025-03", mode=FunnelMode.COHORT).groups
    assert from_creation(march)[1:5] == [
        ("mql", D(259200)), ("sql", D(1209600)), ("meeting", D(1299600)),
        ("opportunity", D(1555200)),
    ]  # fmt: skip


def test_median_from_creation_skips_the_creation_instant_and_averages_even_counts(tenant_a):
    # given a lead imported at sql at its creation instant, and two reaching sql after 1 s
    # and 2 s without an mql (recycled first)
    start = jst(4, 1, 9)
    lead_with(tenant_a, created_at=start, path=((Stage.RECYCLED, start), (SQL, start)))
    for seconds in (1, 2):
        at = start + dt.timedelta(seconds=seconds)
        lead_with(tenant_a, created_at=start, path=((Stage.RECYCLED, at), (SQL, at)))
    # then both modes give 1.5 s from creation though none has a time from mql
    for mode in (FunnelMode.PERIOD, FunnelMode.COHORT):
        (group,) = compute(tenant_a, "2025-04", mode=mode).groups
        sql = group.steps[2]
        assert (sql.count, sql.median_seconds_from_previous) == (3, None)
        assert sql.median_seconds_from_creation == D("1.5")


def test_median_from_creation_follows_scope_and_breakdown(tenant_a, april, rita, sam):
    # rita's April (L1, L2): sql 90000, 93600, 374400 -> 93600
    (group,) = compute(tenant_a, "2025-04", scope=KpiScope.rep(rita.pk)).groups
    assert group.steps[2].median_seconds_from_creation == D(93600)
    by_rep = compute(tenant_a, "2025-04", breakdown=FunnelBreakdown.REP)
    medians = {g.key: g.steps[1].median_seconds_from_creation for g in by_rep.groups}
    # rita: mql 3600, 7200, 266400; sam: L3's 1776600
    assert (medians[rita.pk], medians[sam.pk]) == (D(7200), D(1776600))


FROM_CREATION = """query($mode: FunnelMode) {
  funnel(period: "2025-04", mode: $mode) {
    groups { steps { stage medianSecondsFromPrevious medianSecondsFromCreation } }
  }
}"""


def test_median_from_creation_over_graphql(graphql, tenant_a, token_a, token_b, april):
    _, body = graphql(FROM_CREATION, {"mode": "COHORT"}, token=token_a)
    (group,) = body["data"]["funnel"]["groups"]
    assert [(s["stage"], s["medianSecondsFromCreation"]) for s in group["steps"]] == [
        ("LEAD", None), ("MQL", 7200.0), ("SQL", 93600.0), ("MEETING", 176400.0),
        ("OPPORTUNITY", 349200.0), ("WON", 781200.0),
    ]  # fmt: skip
    # and tenant B sees none of A's times
    _, body = graphql(FROM_CREATION, {"mode": "PERIOD"}, token=token_b)
    (group,) = body["data"]["funnel"]["groups"]
    assert {s["medianSecondsFromCreation"] for s in group["steps"]} == {None}
