"""`dashboard` answers from the KPI response cache: served again only while nothing a
dashboard reads has changed (its layout, alerts, labels, KPI data), per tenant and member."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from strawberry.relay import to_base64

from alerts import services as alert_services
from alerts.evaluation import alerts_evaluate
from alerts.models import Alert
from kpis.graphql import tree_cache
from kpis.versions import kpi_read_version
from pipeline import deal_stages
from pipeline.models import DealStage
from reports.models import DashboardWidget
from tenants import services
from tenants.context import tenant_context
from tests.reports.conftest import at
from tests.reports.test_dashboards import gid, make_dashboard, writer_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """On whatever the cache: this process is the only writer here (the PostgreSQL run
    uses Redis, where it is on anyway)."""
    monkeypatch.setattr(tree_cache, "enabled", lambda: True)


WIDGETS: list[tuple[str, dict[str, Any]]] = [
    ("kpi_tiles", {"kpis": ["calls"]}),
    ("kpi_tree", {}),
    ("funnel", {"mode": "period"}),
    ("leaderboard", {"kpi": "calls", "by": "rep", "first": 3}),
    ("alerts", {"first": 5}),
]
DASHBOARD = """
query($id: ID, $period: String!) {
  dashboard(id: $id, period: $period) {
    dashboard { name }
    widgets {
      kind title
      tiles { kpi { key } value { numerator pending } }
      funnel { groups { steps { stage count } } }
      leaderboard { entries { rank label value { numerator } } }
      alerts { totalCount items { period state acknowledgedAt lastEvaluatedAt } }
    }
  }
}"""
TRIVIAL = "query { __typename }"
UPDATE_WIDGET = """
mutation($input: UpdateDashboardWidgetInput!) {
  updateDashboardWidget(input: $input) { errors { code } }
}"""
INGEST = """mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) { activities { created rejected } }
}"""


def _read(graphql: Any, dashboard: Any, period: str = "2026-06", **who: Any) -> dict[str, Any]:
    _, body = graphql(DASHBOARD, {"id": gid(dashboard), "period": period}, **who)
    assert "errors" not in body, body
    return {w["kind"].lower(): w for w in body["data"]["dashboard"]["widgets"]}


def _queries(graphql: Any, query: str, variables: dict[str, Any] | None, token: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        _, body = graphql(query, variables, token=token)
    assert "errors" not in body, body
    return len(captured.captured_queries)


def test_a_repeated_read_costs_the_queries_of_a_trivial_query(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    variables = {"id": gid(dashboard), "period": "2026-06"}
    # given a first read (evaluated: many queries)
    first = _queries(graphql, DASHBOARD, variables, token_a)
    trivial = _queries(graphql, TRIVIAL, None, token_a)
    assert first > trivial
    # when it is read again, then it costs what `{ __typename }` costs
    assert _queries(graphql, DASHBOARD, variables, token_a) == trivial
    # and another month is evaluated on its own
    assert _queries(graphql, DASHBOARD, {**variables, "period": "2026-05"}, token_a) > trivial


def test_acknowledging_an_alert_is_seen_at_once(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    before = _read(graphql, dashboard, token=token_a)["alerts"]["alerts"]
    assert [(a["period"], a["acknowledgedAt"]) for a in before["items"]] == [
        ("2026-05", None),
        ("2026-06", None),
    ]
    # when June's alert is acknowledged
    with tenant_context(tenant_a):
        alert = Alert.objects.get(period_label="2026-06")
        alert_services.alert_acknowledge(
            tenant=tenant_a, alert=alert, actor=sales["manager"], actor_label="mika"
        )
        acknowledged = Alert.objects.get(pk=alert.pk).acknowledged_at
    # then the next read shows it
    after = _read(graphql, dashboard, token=token_a)["alerts"]["alerts"]
    assert [(a["period"], a["acknowledgedAt"]) for a in after["items"]] == [
        ("2026-05", None),
        ("2026-06", acknowledged.isoformat()),
    ]


def test_an_evaluation_writing_alerts_in_bulk_is_seen_at_once(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    before = _read(graphql, dashboard, token=token_a)["alerts"]["alerts"]
    assert [a["period"] for a in before["items"]] == ["2026-05", "2026-06"]
    # when an evaluation a day later touches the alert (a bulk update: no signal)
    alerts_evaluate(tenant=tenant_a, now=at(2026, 6, 30, 13))
    touched = _read(graphql, dashboard, token=token_a)["alerts"]["alerts"]["items"]
    assert [a["lastEvaluatedAt"] for a in touched] == ["2026-06-30T04:00:00+00:00"] * 2
    # and when July's evaluation resolves May's alert (raw SQL on PostgreSQL) and fires
    # July's (a bulk insert)
    alerts_evaluate(tenant=tenant_a, now=at(2026, 7, 15, 12))
    after = _read(graphql, dashboard, token=token_a)["alerts"]["alerts"]
    # then the next read shows the firing alerts as they are now
    assert [(a["period"], a["state"]) for a in after["items"]] == [
        ("2026-07", "FIRING"),
        ("2026-06", "FIRING"),
    ]
    assert after["totalCount"] == 2


def test_editing_a_widget_is_seen_at_once(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    assert _read(graphql, dashboard, token=token_a)["kpi_tiles"]["title"] == ""
    with tenant_context(tenant_a):
        tiles = DashboardWidget.objects.get(dashboard=dashboard, kind="kpi_tiles")
    # when its tiles widget is renamed and given another KPI
    _, body = graphql(
        UPDATE_WIDGET,
        {"input": {"id": to_base64("DashboardWidget", tiles.pk), "title": "Calls",
                   "config": {"kpis": ["connects"]}}},
        token=writer_token(tenant_a),
    )  # fmt: skip
    assert body["data"]["updateDashboardWidget"]["errors"] == [], body
    # then the next read shows both
    widget = _read(graphql, dashboard, token=token_a)["kpi_tiles"]
    assert widget["title"] == "Calls"
    assert [t["kpi"]["key"] for t in widget["tiles"]] == ["connects"]


def test_renaming_a_deal_stage_makes_the_next_read_evaluate_again(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    variables = {"id": gid(dashboard), "period": "2026-06"}
    _queries(graphql, DASHBOARD, variables, token_a)
    trivial = _queries(graphql, TRIVIAL, None, token_a)
    assert _queries(graphql, DASHBOARD, variables, token_a) == trivial
    version = kpi_read_version(tenant_a.pk)
    # when a deal stage is renamed
    with tenant_context(tenant_a):
        stage = DealStage.objects.order_by("order").first()
    deal_stages.deal_stage_update(stage=stage, name="Discovery call")
    # then the version moved and the next read is evaluated again
    assert kpi_read_version(tenant_a.pk) > version
    assert _queries(graphql, DASHBOARD, variables, token_a) > trivial


def test_renaming_a_user_shows_in_the_leaderboard(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    labels = [e["label"] for e in _read(graphql, dashboard, token=token_a)["leaderboard"][
        "leaderboard"]["entries"]]  # fmt: skip
    assert "ren" in labels
    # when ren's user is renamed (the label of a member without a display name)
    user = sales["reps"][0].user
    user.username = "ren.k"
    user.save()
    # then the next read shows the new label
    entries = _read(graphql, dashboard, token=token_a)["leaderboard"]["leaderboard"]["entries"]
    assert "ren.k" in [e["label"] for e in entries] and "ren" not in [e["label"] for e in entries]


def test_ingesting_a_record_is_seen_at_once(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    before = _read(graphql, dashboard, token=token_a)["kpi_tiles"]["tiles"][0]["value"]
    assert before == {"numerator": "21", "pending": False}
    # when a call of June is ingested (its refresh not yet run)
    records = {
        "sourceSystem": "crm",
        "leads": [{"externalId": "L-9", "company": "Example KK",
                   "createdAt": "2026-06-20T09:00:00+09:00"}],
        "activities": [{"externalId": "C-9", "leadExternalId": "L-9", "type": "call",
                        "callOutcome": "connected", "occurredAt": "2026-06-20T10:00:00+09:00"}],
    }  # fmt: skip
    _, body = graphql(INGEST, {"input": records}, token=token_a)
    assert body["data"]["ingestRecords"]["activities"] == {"created": 1, "rejected": 0}, body
    # then the next read says pending, and the funnel (read raw while dirty) counts the lead
    widgets = _read(graphql, dashboard, token=token_a)
    assert widgets["kpi_tiles"]["tiles"][0]["value"] == {"numerator": "21", "pending": True}
    steps = widgets["funnel"]["funnel"]["groups"][0]["steps"]
    assert steps[0] == {"stage": "LEAD", "count": 7}


def test_tenants_never_share_answers(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_a: str, token_b: str, sales: dict[str, Any]
) -> None:
    ours = make_dashboard(tenant_a, WIDGETS)
    theirs = make_dashboard(tenant_b, WIDGETS)
    assert ours.name == theirs.name  # the same document and variables but for the id
    assert _read(graphql, ours, token=token_a)["kpi_tiles"]["tiles"][0]["value"] == {
        "numerator": "21",
        "pending": False,
    }
    # B reading A's dashboard (cached for A) is told it does not exist
    _, body = graphql(DASHBOARD, {"id": gid(ours), "period": "2026-06"}, token=token_b)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and B's own shows B's numbers
    assert _read(graphql, theirs, token=token_b)["kpi_tiles"]["tiles"][0]["value"] == {
        "numerator": "0",
        "pending": False,
    }


def test_each_member_gets_their_own_default_and_personal_dashboards(
    graphql: Any, tenant_a: Any, sales: dict[str, Any]
) -> None:
    rep, manager = sales["reps"][0], sales["manager"]
    # the same document without an id: each role's default, whoever asked first
    for who, name in ((rep, "My activity / 自分の活動"), (manager, "Team overview / チーム概況")):
        for _ in range(2):
            _, body = graphql(DASHBOARD, {"period": "2026-06"}, user=who.user, tenant="acme")
            assert body["data"]["dashboard"]["dashboard"]["name"] == name
    # a personal dashboard read (and cached) by its owner is not found for another rep
    with tenant_context(tenant_a):
        mine = make_dashboard(tenant_a, WIDGETS[:1])
        mine.is_shared, mine.owner = False, rep
        mine.save()
    assert _read(graphql, mine, user=rep.user, tenant="acme")["kpi_tiles"]["tiles"]
    _, body = graphql(
        DASHBOARD, {"id": gid(mine), "period": "2026-06"}, user=sales["reps"][1].user,
        tenant="acme",
    )  # fmt: skip
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_a_token_without_kpis_read_gets_the_error_not_the_cached_answer(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, WIDGETS)
    _read(graphql, dashboard, token=token_a)
    _, writer = services.api_token_create(tenant=tenant_a, name="writer", scopes=["records:write"])
    _, body = graphql(DASHBOARD, {"id": gid(dashboard), "period": "2026-06"}, token=writer)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_dashboard_is_a_cacheable_root() -> None:
    from graphql import parse

    both = 'query { dashboard(period: "2026-06") { period { label } } kpiTree(period: "2026-06") '
    assert tree_cache.cacheable(parse(both + "{ headcount } __typename }"), None) is True
    mixed = 'query { dashboard(period: "2026-06") { period { label } } me { scopes } }'
    assert tree_cache.cacheable(parse(mixed), None) is False
