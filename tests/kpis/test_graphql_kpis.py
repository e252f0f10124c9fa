"""GraphQL reads of KPIs: catalogue, values, series, leaderboards and tenant-defined KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from strawberry.relay import to_base64

from kpis.catalogue import catalogue_kpis
from kpis.snapshots import kpi_snapshots_rebuild
from pipeline import services as pipeline_services
from pipeline.models import DirtyDay
from tenants import members, services
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory, api_token

UTC = dt.UTC
pytestmark = pytest.mark.django_db

VALUES = """
query($period: String!, $kpis: [String!], $scope: ScopeInput, $comparison: Comparison) {
  kpiValues(period: $period, kpis: $kpis, scope: $scope, comparison: $comparison) {
    period { label start end }
    value { kpi { key unit } value numerator denominator computedAt pending }
    comparison { period { label } value numerator }
  }
}"""

SERIES = """
query($kpi: String!, $grain: Grain!, $start: Date!, $end: Date!, $scope: ScopeInput) {
  kpiSeries(kpi: $kpi, grain: $grain, start: $start, end: $end, scope: $scope,
            comparison: SAME_PERIOD_LAST_YEAR) {
    grain
    points { period { label } value { value } comparison { period { label } value } }
  }
}"""

LEADERBOARD = """
query($kpi: String!, $period: String!, $by: LeaderboardBy!) {
  leaderboard(kpi: $kpi, period: $period, by: $by) {
    entries { rank label scope { type id source } value { value numerator denominator } }
  }
}"""


@pytest.fixture
def data(tenant_a: Any) -> dict[str, Any]:
    """Two reps in two teams: Ren makes 3 calls (1 connected), Rio 1 connected call."""
    teams = [TeamFactory(tenant=tenant_a, name=name) for name in ("East", "West")]
    reps = [
        members.membership_add(
            tenant=tenant_a, user=UserFactory(username=name), role=Role.REP, team=team
        )
        for name, team in (("ren", teams[0]), ("rio", teams[1]))
    ]
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="A社", source="web")
        plan = [(reps[0], "connected"), (reps[0], "no_answer"), (reps[0], "busy")]
        plan.append((reps[1], "connected"))
        for index, (rep, outcome) in enumerate(plan):
            pipeline_services.activity_create(
                tenant=tenant_a,
                lead=lead,
                rep=rep,
                type="call",
                call_outcome=outcome,
                occurred_at=dt.datetime(2026, 6, 1 + index, 1, tzinfo=UTC),
            )
        pipeline_services.activity_create(
            tenant=tenant_a,
            lead=lead,
            rep=reps[0],
            type="call",
            occurred_at=dt.datetime(2025, 6, 3, 1, tzinfo=UTC),
        )
        kpi_snapshots_rebuild(tenant=tenant_a)
    return {"teams": teams, "reps": reps}


def test_kpi_values_are_exact_and_rounded_half_up_with_comparison(
    graphql: Any, token_a: str, data: dict[str, Any]
) -> None:
    # when
    status, body = graphql(
        VALUES,
        {"period": "2026-06", "kpis": ["connect_rate", "calls", "win_rate"],
         "comparison": "SAME_PERIOD_LAST_YEAR"},
        token=token_a,
    )  # fmt: skip
    # then 2 of 4 calls connected = 50 %, win rate has no denominator: null
    assert status == 200, body
    rows = {row["value"]["kpi"]["key"]: row for row in body["data"]["kpiValues"]}
    assert rows["connect_rate"]["value"]["value"] == "50.0000"
    assert rows["connect_rate"]["value"]["numerator"] == "2"
    assert rows["connect_rate"]["value"]["denominator"] == "4"
    assert rows["connect_rate"]["period"] == {
        "label": "2026-06", "start": "2026-06-01", "end": "2026-07-01"
    }  # fmt: skip
    assert rows["calls"]["value"]["computedAt"] is not None
    assert rows["calls"]["value"]["pending"] is False
    assert rows["calls"]["comparison"] == {
        "period": {"label": "2025-06"}, "value": "1.0000", "numerator": "1"
    }  # fmt: skip
    assert rows["win_rate"]["value"]["value"] is None


def test_connect_rate_of_one_in_three_is_rounded_half_up(
    graphql: Any, token_a: str, data: dict[str, Any]
) -> None:
    ren = data["reps"][0]
    scope = {"type": "REP", "id": to_base64("Membership", ren.pk)}
    _, body = graphql(VALUES, {"period": "2026-06", "kpis": ["connect_rate"], "scope": scope},
                      token=token_a)  # fmt: skip
    assert body["data"]["kpiValues"][0]["value"]["value"] == "33.3333"


def test_pending_is_true_while_a_day_waits_for_its_refresh(
    graphql: Any, token_a: str, tenant_a: Any, data: dict[str, Any]
) -> None:
    with tenant_context(tenant_a):
        DirtyDay.objects.create(tenant=tenant_a, day=dt.date(2026, 6, 15))
    _, body = graphql(VALUES, {"period": "2026-06", "kpis": ["calls"]}, token=token_a)
    assert body["data"]["kpiValues"][0]["value"]["pending"] is True


def test_series_has_one_point_per_period_and_a_constant_query_count(
    graphql: Any, token_a: str, data: dict[str, Any]
) -> None:
    variables = {"kpi": "calls", "grain": "MONTH", "start": "2026-04-01", "end": "2026-06-30"}
    graphql(SERIES, variables, token=token_a)  # the token's first use records last_used_at
    with CaptureQueriesContext(connection) as short:
        _, body = graphql(SERIES, variables, token=token_a)
    points = body["data"]["kpiSeries"]["points"]
    assert [(p["period"]["label"], p["value"]["value"]) for p in points] == [
        ("2026-04", "0.0000"), ("2026-05", "0.0000"), ("2026-06", "4.0000"),
    ]  # fmt: skip
    assert points[2]["comparison"] == {"period": {"label": "2025-06"}, "value": "1.0000"}
    # and a two-year daily series costs the same number of queries
    variables = {"kpi": "calls", "grain": "DAY", "start": "2025-01-01", "end": "2026-01-31"}
    with CaptureQueriesContext(connection) as long:
        _, body = graphql(SERIES, variables, token=token_a)
    assert len(body["data"]["kpiSeries"]["points"]) == 396
    assert len(long.captured_queries) == len(short.captured_queries) <= 20


def test_series_longer_than_the_cap_is_refused(graphql: Any, token_a: str) -> None:
    variables = {"kpi": "calls", "grain": "DAY", "start": "2020-01-01", "end": "2026-01-31"}
    _, body = graphql(SERIES, variables, token=token_a)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"


def test_leaderboard_ranks_reps_and_teams(graphql: Any, token_a: str, data: dict[str, Any]) -> None:
    _, body = graphql(LEADERBOARD, {"kpi": "connect_rate", "period": "2026-06", "by": "REP"},
                      token=token_a)  # fmt: skip
    entries = body["data"]["leaderboard"]["entries"]
    assert [(e["rank"], e["label"], e["value"]["value"]) for e in entries] == [
        (1, "rio", "100.0000"), (2, "ren", "33.3333"),
    ]  # fmt: skip
    _, body = graphql(LEADERBOARD, {"kpi": "calls", "period": "2026-06", "by": "TEAM"},
                      token=token_a)  # fmt: skip
    assert [(e["label"], e["value"]["value"]) for e in body["data"]["leaderboard"]["entries"]] == [
        ("East", "3.0000"), ("West", "1.0000"),
    ]  # fmt: skip


PAGE = """
query($by: LeaderboardBy!, $offset: Int!) {
  leaderboard(kpi: "calls", period: "2026-06", by: $by, first: 1, offset: $offset) {
    by totalCount entries { rank label }
  }
}"""


@pytest.mark.parametrize("by", ["REP", "TEAM"])
def test_leaderboard_pages_keep_the_ranks_of_the_whole_list(
    graphql: Any, token_a: str, data: dict[str, Any], by: str
) -> None:
    _, body = graphql(LEADERBOARD, {"kpi": "calls", "period": "2026-06", "by": by}, token=token_a)
    entries = body["data"]["leaderboard"]["entries"]
    whole = [{"rank": e["rank"], "label": e["label"]} for e in entries]
    assert len(whole) >= 2
    pages = [
        graphql(PAGE, {"by": by, "offset": offset}, token=token_a)[1]["data"]["leaderboard"]
        for offset in range(len(whole) + 1)
    ]
    assert {(page["by"], page["totalCount"]) for page in pages} == {(by, len(whole))}
    assert [entry for page in pages for entry in page["entries"]] == whole
    assert pages[-1]["entries"] == []
    _, body = graphql(PAGE, {"by": by, "offset": -1}, token=token_a)
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"period": "2026-13"}, "VALIDATION"),
        ({"period": "June"}, "VALIDATION"),
        ({"period": "2026-06", "kpis": ["nope"]}, "VALIDATION"),
        ({"period": "2026-06", "scope": {"type": "TEAM"}}, "VALIDATION"),
        ({"period": "2026-06", "scope": {"type": "TEAM", "id": to_base64("Team", 999999)}},
         "NOT_FOUND"),
    ],
)  # fmt: skip
def test_bad_input_is_a_typed_error(
    graphql: Any, token_a: str, variables: dict[str, Any], code: str
) -> None:
    _, body = graphql(VALUES, variables, token=token_a)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code


def test_tenant_b_sees_none_of_a_and_cannot_use_a_team_id(
    graphql: Any, token_b: str, data: dict[str, Any]
) -> None:
    # when B asks for the same period
    _, body = graphql(VALUES, {"period": "2026-06", "kpis": ["calls"]}, token=token_b)
    # then B's own (empty) numbers come back
    assert body["data"]["kpiValues"][0]["value"]["value"] == "0.0000"
    # and A's team is not found for B
    scope = {"type": "TEAM", "id": to_base64("Team", data["teams"][0].pk)}
    _, body = graphql(VALUES, {"period": "2026-06", "scope": scope}, token=token_b)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and A's reps are not on B's leaderboard
    _, body = graphql(LEADERBOARD, {"kpi": "calls", "period": "2026-06", "by": "REP"},
                      token=token_b)  # fmt: skip
    assert body["data"]["leaderboard"]["entries"] == []


def test_reading_kpis_needs_the_kpis_read_scope(graphql: Any, tenant_a: Any) -> None:
    secret = api_token(tenant_a, "records:write", name="etl")
    _, body = graphql(VALUES, {"period": "2026-06"}, token=secret)
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


CREATE_KPI = """
mutation($input: CreateKpiInput!) {
  createKpi(input: $input) { kpi { key builtin unit denominator } errors { code field message } }
}"""


def test_tenant_defined_kpi_is_computed_from_the_same_measures(
    graphql: Any, tenant_a: Any, data: dict[str, Any]
) -> None:
    # given a manager token of tenant A
    secret = api_token(tenant_a, "kpis:read", "kpis:write", name="mgr")
    kpi = {"key": "calls_per_connect", "nameJa": "コネクト当たり架電", "category": "activity",
           "layer": "quality", "numerator": "calls", "denominator": "connects",
           "unit": "ratio"}  # fmt: skip
    # when it defines calls per connect
    _, body = graphql(CREATE_KPI, {"input": kpi}, token=secret)
    assert body["data"]["createKpi"] == {
        "kpi": {"key": "calls_per_connect", "builtin": False, "unit": "ratio",
                "denominator": "connects"},
        "errors": [],
    }  # fmt: skip
    # then it is served like any KPI: 4 calls ÷ 2 connects
    _, body = graphql(VALUES, {"period": "2026-06", "kpis": ["calls_per_connect"]}, token=secret)
    assert body["data"]["kpiValues"][0]["value"]["value"] == "2.0000"
    # and a clash with a built-in, an unknown measure and a duplicate are typed errors
    for change, code, field in (
        ({"key": "calls"}, "CONFLICT", "key"),
        ({"numerator": "nope"}, "VALIDATION", "numerator"),
        ({}, "CONFLICT", "key"),
    ):
        _, body = graphql(CREATE_KPI, {"input": {**kpi, **change}}, token=secret)
        error = body["data"]["createKpi"]["errors"][0]
        assert (error["code"], error["field"]) == (code, field)
    # and tenant B's catalogue does not have it
    secret_b = api_token(services.tenant_create(slug="other", name="Other"), "kpis:read", name="x")
    _, body = graphql("{ kpiCatalogue { key } }", token=secret_b)
    keys = [row["key"] for row in body["data"]["kpiCatalogue"]]
    assert "calls_per_connect" not in keys and len(keys) == len(catalogue_kpis())


def test_creating_kpis_needs_kpis_write(graphql: Any, token_a: str) -> None:
    kpi = {"key": "x_rate", "nameJa": "x", "category": "activity", "layer": "quality",
           "numerator": "calls"}  # fmt: skip
    _, body = graphql(CREATE_KPI, {"input": kpi}, token=token_a)
    assert body["data"]["createKpi"]["errors"][0]["code"] == "PERMISSION_DENIED"
