"""What front ends and integrators stumbled on: errors that name what was not found (an unknown
KPI key, an unknown lead source with the tenant's known ones), several KPIs in one series
request, and values for display beside the exact ones."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis.snapshots import kpi_snapshots_rebuild
from pipeline import services as pipeline_services
from tenants.context import tenant_context

UTC = dt.UTC
pytestmark = pytest.mark.django_db

PERIOD = '"2026-06"'
DAYS = 'grain: MONTH, start: "2026-06-01", end: "2026-06-30"'


def error(body: dict[str, Any]) -> tuple[str, str | None, str]:
    (first, *_rest) = body["errors"]
    return first["extensions"]["code"], first["extensions"].get("field"), first["message"]


@pytest.mark.parametrize(
    "query",
    [
        f'{{ kpiSeries(kpi: "no_such_kpi", {DAYS}) {{ grain }} }}',
        f'{{ kpiSeriesCsv(kpi: "no_such_kpi", {DAYS}) }}',
        f'{{ leaderboard(kpi: "no_such_kpi", period: {PERIOD}) {{ totalCount }} }}',
        f'{{ leaderboardCsv(kpi: "no_such_kpi", period: {PERIOD}) }}',
        f'{{ kpiTargetSuggestion(kpi: "no_such_kpi", period: {PERIOD}) {{ ownValue }} }}',
    ],
)
def test_an_unknown_kpi_is_not_found_by_its_key(graphql: Any, token_a: str, query: str) -> None:
    _, body = graphql(query, token=token_a)
    assert body["data"] is None
    assert error(body) == ("NOT_FOUND", "kpi", "KPI 'no_such_kpi' not found.")


def test_an_unknown_kpi_in_a_list_is_named(graphql: Any, token_a: str) -> None:
    query = f'{{ kpiValues(period: {PERIOD}, kpis: ["calls", "no_such_kpi"]) {{ __typename }} }}'
    _, body = graphql(query, token=token_a)
    assert error(body) == ("VALIDATION", "kpis", "Unknown KPI 'no_such_kpi'.")


def test_another_tenants_kpi_is_not_found_by_its_key(
    graphql: Any, tenant_a: Any, token_b: str
) -> None:
    from kpis import definitions

    with tenant_context(tenant_a):
        definitions.kpi_custom_create(
            tenant=tenant_a, key="a_only", name_ja="A社のKPI", numerator="calls", unit="count",
            category="activity", layer="volume", direction="higher_is_better",
        )  # fmt: skip
    _, body = graphql(f'{{ kpiSeries(kpi: "a_only", {DAYS}) {{ grain }} }}', token=token_b)
    assert error(body) == ("NOT_FOUND", "kpi", "KPI 'a_only' not found.")


SOURCE_VALUES = """query($source: String!) {
  kpiValues(period: "2026-06", kpis: ["leads"], scope: {type: SOURCE, source: $source}) {
    value { numerator }
  }
}"""


@pytest.fixture
def sources(tenant_a: Any, tenant_b: Any) -> None:
    """A has leads from web and referral (and one without a source); B from b_only."""
    for tenant, names in ((tenant_a, ["web", "referral", "web", ""]), (tenant_b, ["b_only"])):
        with tenant_context(tenant):
            for name in names:
                pipeline_services.lead_create(
                    tenant=tenant, company="c", source=name,
                    created_at=dt.datetime(2026, 6, 2, 1, tzinfo=UTC),
                )  # fmt: skip
            kpi_snapshots_rebuild(tenant=tenant)


def test_an_unknown_source_names_it_and_lists_the_tenants_sources(
    graphql: Any, token_a: str, sources: None
) -> None:
    # when A asks for a source none of its leads has (B's, or a typo)
    for source in ("Web", "b_only"):
        _, body = graphql(SOURCE_VALUES, {"source": source}, token=token_a)
        # then it is refused, naming it and A's sources only (never B's)
        assert body["data"] is None
        assert error(body) == (
            "NOT_FOUND", "scope",
            f"Lead source {source!r} not found. Known sources: 'referral', 'web'.",
        )  # fmt: skip
    # and the known ones, and "" (leads without a source), are read
    _, body = graphql(SOURCE_VALUES, {"source": "web"}, token=token_a)
    assert body["data"]["kpiValues"][0]["value"]["numerator"] == "2"
    _, body = graphql(SOURCE_VALUES, {"source": ""}, token=token_a)
    assert body["data"]["kpiValues"][0]["value"]["numerator"] == "1"


def test_an_unknown_source_of_a_workspace_without_sources_says_so(
    graphql: Any, token_a: str
) -> None:
    _, body = graphql(SOURCE_VALUES, {"source": "web"}, token=token_a)
    assert error(body) == (
        "NOT_FOUND", "scope", "Lead source 'web' not found. No lead has a source yet."
    )  # fmt: skip


def test_an_unknown_source_is_refused_by_series_and_funnels_too(
    graphql: Any, token_a: str, sources: None
) -> None:
    scope = '{type: SOURCE, source: "nope"}'
    for query in (
        f'{{ kpiSeries(kpi: "leads", {DAYS}, scope: {scope}) {{ grain }} }}',
        f"{{ funnel(period: {PERIOD}, scope: {scope}) {{ __typename }} }}",
    ):
        _, body = graphql(query, token=token_a)
        assert error(body)[0:2] == ("NOT_FOUND", "scope")
        assert "Known sources: 'referral', 'web'." in error(body)[2]


SERIES_LIST = """query($kpis: [String!]!, $grain: Grain!, $start: Date!, $end: Date!,
                      $scope: ScopeInput, $comparison: Comparison) {
  kpiSeriesList(kpis: $kpis, grain: $grain, start: $start, end: $end, scope: $scope,
                comparison: $comparison) {
    kpi { key }
    grain
    points { period { label } value { value numerator } comparison { period { label } value } }
  }
}"""
SERIES_ONE = """query($kpi: String!) {
  kpiSeries(kpi: $kpi, grain: MONTH, start: "2026-04-01", end: "2026-06-30",
            comparison: PREVIOUS_PERIOD) {
    kpi { key }
    grain
    points { period { label } value { value numerator } comparison { period { label } value } }
  }
}"""
MANY = [
    "calls", "connects", "connect_rate", "leads", "won_deals", "win_rate", "meetings_set",
    "opportunities", "revenue", "weighted_pipeline",
]  # fmt: skip


@pytest.fixture
def calls(tenant_a: Any) -> None:
    """A's calls: 2 in April (1 connected), 3 in June (2 connected), one lead in June."""
    from tenants import members
    from tenants.scopes import Role
    from tests.factories import UserFactory

    rep = members.membership_add(tenant=tenant_a, user=UserFactory(username="ren"), role=Role.REP)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(
            tenant=tenant_a, company="c", source="web",
            created_at=dt.datetime(2026, 6, 2, 1, tzinfo=UTC),
        )  # fmt: skip
        plan = [(4, "connected"), (4, "busy"), (6, "connected"), (6, "connected"), (6, "busy")]
        for index, (month, outcome) in enumerate(plan):
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, rep=rep, type="call", call_outcome=outcome,
                occurred_at=dt.datetime(2026, month, 3 + index, 1, tzinfo=UTC),
            )  # fmt: skip
        kpi_snapshots_rebuild(tenant=tenant_a)


def test_a_series_list_gives_one_series_per_kpi_equal_to_the_single_form(
    graphql: Any, token_a: str, calls: None
) -> None:
    # when a chart asks for three KPIs at once
    variables = {"kpis": ["calls", "connect_rate", "leads"], "grain": "MONTH",
                 "start": "2026-04-01", "end": "2026-06-30",
                 "comparison": "PREVIOUS_PERIOD"}  # fmt: skip
    _, body = graphql(SERIES_LIST, variables, token=token_a)
    listed = body["data"]["kpiSeriesList"]
    # then one series per KPI, in the order asked
    assert [series["kpi"]["key"] for series in listed] == ["calls", "connect_rate", "leads"]
    assert [(p["period"]["label"], p["value"]["value"]) for p in listed[1]["points"]] == [
        ("2026-04", "50.0000"), ("2026-05", None), ("2026-06", "66.6667"),
    ]  # fmt: skip
    assert [p["value"]["numerator"] for p in listed[0]["points"]] == ["2", "0", "3"]
    # and each is exactly what the single-KPI form (still working) gives
    for series in listed:
        _, one = graphql(SERIES_ONE, {"kpi": series["kpi"]["key"]}, token=token_a)
        assert one["data"]["kpiSeries"] == series


def test_a_series_list_costs_the_same_queries_whatever_the_number_of_kpis(
    graphql: Any, token_a: str, calls: None, django_assert_max_num_queries: Any
) -> None:
    base = {"grain": "DAY", "start": "2026-04-01", "end": "2026-06-30",
            "comparison": "SAME_PERIOD_LAST_YEAR"}  # fmt: skip
    # a stock and a calendar KPI: every kind of read the other KPIs need
    few = ["weighted_pipeline", "calls_per_rep_day"]
    graphql(SERIES_LIST, {**base, "kpis": few}, token=token_a)  # the token's first use
    with CaptureQueriesContext(connection) as one:
        graphql(SERIES_LIST, {**base, "kpis": few}, token=token_a)
    with django_assert_max_num_queries(len(one.captured_queries)):
        _, body = graphql(SERIES_LIST, {**base, "kpis": MANY}, token=token_a)
    assert len(body["data"]["kpiSeriesList"]) == 10
    assert all(len(series["points"]) == 91 for series in body["data"]["kpiSeriesList"])
    assert len(one.captured_queries) <= 20


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"kpis": []}, ("VALIDATION", "kpis", "Ask for at least one KPI.")),
        ({"kpis": ["calls"] * 51}, ("VALIDATION", "kpis", "At most 50 KPIs per request.")),
        ({"kpis": ["calls", "nope"]}, ("NOT_FOUND", "kpis", "KPI 'nope' not found.")),
        # 11 KPIs x 366 days is over the cap, 10 x 366 is not
        ({"kpis": [*MANY, "mqls"], "grain": "DAY", "start": "2025-01-01", "end": "2026-01-01"},
         ("BATCH_TOO_LARGE", "kpis", "11 KPIs x 366 points is over 4000 values; ask for fewer "
          "KPIs, a shorter range or a coarser grain.")),
        ({"kpis": ["calls"], "start": "2026-07-01"},
         ("VALIDATION", "end", "The range ends before it starts.")),
    ],
)  # fmt: skip
def test_bad_series_lists_are_typed_errors(
    graphql: Any, token_a: str, variables: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    base = {"grain": "MONTH", "start": "2026-04-01", "end": "2026-06-30"}
    _, body = graphql(SERIES_LIST, {**base, **variables}, token=token_a)
    assert body["data"] is None
    assert error(body) == expected


def test_the_cap_counts_kpis_times_points(graphql: Any, token_a: str) -> None:
    variables = {"kpis": MANY, "grain": "DAY", "start": "2025-01-01", "end": "2026-01-01"}
    _, body = graphql(SERIES_LIST, variables, token=token_a)
    assert "errors" not in body, body
    assert len(body["data"]["kpiSeriesList"]) == 10


def test_a_series_list_of_tenant_b_shows_none_of_a(
    graphql: Any, token_b: str, calls: None, tenant_a: Any
) -> None:
    from kpis import definitions

    with tenant_context(tenant_a):
        definitions.kpi_custom_create(
            tenant=tenant_a, key="a_only", name_ja="A社のKPI", numerator="calls", unit="count",
            category="activity", layer="volume", direction="higher_is_better",
        )  # fmt: skip
    variables = {"kpis": ["calls"], "grain": "MONTH", "start": "2026-04-01", "end": "2026-06-30"}
    _, body = graphql(SERIES_LIST, variables, token=token_b)
    assert [p["value"]["numerator"] for p in body["data"]["kpiSeriesList"][0]["points"]] == [
        "0", "0", "0"
    ]  # fmt: skip
    _, body = graphql(SERIES_LIST, {**variables, "kpis": ["calls", "a_only"]}, token=token_b)
    assert error(body) == ("NOT_FOUND", "kpis", "KPI 'a_only' not found.")


DISPLAY = """{
  kpiValues(period: "2026-06", kpis: ["pipeline_created", "weighted_pipeline", "calls",
                                      "connect_rate", "calls_per_rep_day", "win_rate"]) {
    value { kpi { key } value display asInt minorUnits currency }
  }
}"""


def _seed_display(tenant: Any, username: str) -> None:
    """A deal of 12,345.45 at the first stage (10 %: 1,234.545 weighted), 3 calls, 2 connected."""
    from pipeline.models import DealStage
    from tenants import members
    from tenants.scopes import Role
    from tests.factories import UserFactory

    rep = members.membership_add(tenant=tenant, user=UserFactory(username=username), role=Role.REP)
    with tenant_context(tenant):
        at = dt.datetime(2026, 6, 2, 1, tzinfo=UTC)
        lead = pipeline_services.lead_create(tenant=tenant, company="c", created_at=at)
        first = DealStage.objects.order_by("order").first()
        pipeline_services.deal_create(
            tenant=tenant, lead=lead, amount=Decimal("12345.45"), stage=first, created_at=at
        )
        for index, outcome in enumerate(["connected", "connected", "busy"]):
            pipeline_services.activity_create(
                tenant=tenant, lead=lead, rep=rep, type="call", call_outcome=outcome,
                occurred_at=dt.datetime(2026, 6, 3 + index, 1, tzinfo=UTC),
            )  # fmt: skip
        kpi_snapshots_rebuild(tenant=tenant)


def test_values_come_for_display_beside_the_exact_value(graphql: Any, tenant_a: Any) -> None:
    from tenants import services
    from tests.factories import TenantFactory

    usd = TenantFactory(slug="us-co", currency="USD", holiday_country="US", language="en")
    tokens = {}
    for tenant, username in ((tenant_a, "ren"), (usd, "rob")):
        _seed_display(tenant, username)
        tokens[tenant.currency] = services.api_token_create(
            tenant=tenant, name="bi", scopes=["kpis:read"]
        )[1]
    found = {}
    for currency, token in tokens.items():
        _, body = graphql(DISPLAY, token=token)
        rows = body["data"]["kpiValues"]
        found[currency] = {row["value"]["kpi"]["key"]: row["value"] for row in rows}
    jpy, usd_values = found["JPY"], found["USD"]
    # money: the exact value unchanged, display and minor units at the currency's minor unit
    assert jpy["weighted_pipeline"] == {
        "kpi": {"key": "weighted_pipeline"}, "value": "1234.5450", "display": "1235",
        "asInt": None, "minorUnits": 1235, "currency": "JPY",
    }  # fmt: skip
    assert usd_values["weighted_pipeline"] == {
        "kpi": {"key": "weighted_pipeline"}, "value": "1234.5450", "display": "1234.55",
        "asInt": None, "minorUnits": 123455, "currency": "USD",
    }  # fmt: skip
    assert (jpy["pipeline_created"]["display"], jpy["pipeline_created"]["minorUnits"]) == (
        "12345", 12345
    )  # fmt: skip
    assert usd_values["pipeline_created"]["minorUnits"] == 1234545
    # counts as integers, rates to 1 (percent) or 2 (ratio) decimals, null stays null
    for values in (jpy, usd_values):
        assert values["calls"] == {
            "kpi": {"key": "calls"}, "value": "3.0000", "display": "3", "asInt": 3,
            "minorUnits": None, "currency": None,
        }  # fmt: skip
        assert (values["connect_rate"]["value"], values["connect_rate"]["display"]) == (
            "66.6667", "66.7"
        )  # fmt: skip
        assert values["connect_rate"]["asInt"] is None
        per_day = values["calls_per_rep_day"]
        exact = Decimal(per_day["value"])  # 4 decimals here, enough to check 2
        assert per_day["display"] == str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        assert [values["win_rate"][k] for k in ("value", "display", "asInt", "minorUnits")] == [
            None, None, None, None
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "unit", "currency", "display", "minor"),
    [
        ("1234.5", "money", "JPY", "1235", 1235),
        ("-1234.5", "money", "JPY", "-1235", -1235),
        ("1234.505", "money", "USD", "1234.51", 123451),
        ("0.0005", "money", "KWD", "0.001", 1),
        ("30000000.005", "money", "USD", "30000000.01", 3_000_000_001),  # past 2^31
        ("-0.004", "money", "USD", "0.00", 0),
        ("12.5", "count", "JPY", "13", None),
        ("33.3333333", "percent", "USD", "33.3", None),
        ("1.005", "ratio", "USD", "1.01", None),
    ],
)
def test_display_rounds_the_exact_value_half_up(
    value: str, unit: str, currency: str, display: str, minor: int | None
) -> None:
    from kpis.numbers import displayed, minor_units

    assert displayed(Decimal(value), unit=unit, currency=currency) == display
    if minor is not None:
        assert minor_units(Decimal(value), currency=currency) == minor
