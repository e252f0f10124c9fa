"""What front ends and integrators stumbled on: errors that name what was not found (an unknown
KPI key, an unknown lead source with the tenant's known ones), several KPIs in one series
request, and values for display beside the exact ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

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
