"""Dashboards: default layouts, one-request data equal to the standalone queries, a flat
query count, visibility of personal dashboards, tenant isolation and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from strawberry.relay import to_base64

from reports.models import Dashboard, DashboardWidget
from tenants import services
from tenants.context import tenant_context
from tenants.scopes import Role

pytestmark = pytest.mark.django_db

TILES = "tiles { kpi { key } value { kpi { key } value numerator denominator pending } " \
    "comparison { period { label } value numerator } target attainment }"  # fmt: skip
SERIES = "series { kpi { key } grain points { period { label } value { value numerator } " \
    "comparison { period { label } value } } }"  # fmt: skip
TREE = "tree { period { label } projectedKgi bottleneckNodeId headcount workingDays " \
    "nodes { id kind label actual { value } target required requiredRounded attainment gap " \
    "comparisonActual { value } } }"  # fmt: skip
FUNNEL = "funnel { mode groups { key steps { stage count stepConversion overallConversion " \
    "dropOff medianSecondsFromPrevious } lost recycled } comparison { groups { steps { stage " \
    "count } } } }"  # fmt: skip
BOARD = "leaderboard { kpi { key } by totalCount entries { rank label scope { type id } " \
    "value { value numerator } comparison { value } } }"  # fmt: skip
ALERTS = "alerts { totalCount items { id state period rule { name } } }"

DASHBOARD = f"""
query($id: ID, $period: String!, $scope: ScopeInput, $comparison: Comparison) {{
  dashboard(id: $id, period: $period, scope: $scope, comparison: $comparison) {{
    dashboard {{ id name shared }}
    period {{ label }}
    comparisonPeriod {{ label }}
    widgets {{ id kind order config missingKpis {TILES} {SERIES} {TREE} {FUNNEL} {BOARD} {ALERTS} }}
  }}
}}"""

ADD = """
mutation($input: AddDashboardWidgetInput!) {
  addDashboardWidget(input: $input) {
    widget { id kind config order } errors { code field message }
  }
}"""

CREATE = """
mutation($input: CreateDashboardInput!) {
  createDashboard(input: $input) { dashboard { id name shared defaultForRole } errors { code field message } }
}"""  # noqa: E501

LIST = "query { dashboards(first: 100) { totalCount items { id name shared widgets { kind } } } }"


def writer_token(tenant: Any) -> str:
    _, secret = services.api_token_create(
        tenant=tenant, name="writer", scopes=["kpis:read", "kpis:write"]
    )
    return secret


def make_dashboard(tenant: Any, widgets: list[tuple[str, dict[str, Any]]]) -> Dashboard:
    with tenant_context(tenant):
        dashboard = Dashboard.objects.create(tenant=tenant, name=f"Test {len(widgets)}")
        for order, (kind, config) in enumerate(widgets, start=1):
            DashboardWidget.objects.create(
                tenant=tenant, dashboard=dashboard, kind=kind, order=order, config=config
            )
    return dashboard


def gid(dashboard: Dashboard) -> str:
    return to_base64("Dashboard", dashboard.pk)


EVERY_KIND: list[tuple[str, dict[str, Any]]] = [
    ("kpi_tiles", {"kpis": ["calls", "connect_rate", "meetings_set"]}),
    ("series", {"kpis": ["calls", "connects"], "grain": "month", "points": 3}),
    ("kpi_tree", {}),
    ("funnel", {"mode": "period"}),
    ("leaderboard", {"kpi": "calls", "by": "rep", "first": 2}),
    ("alerts", {"first": 5}),
]
# Six more widgets of the same kinds with other settings: the dashboard doubles in size.
SIX_MORE: list[tuple[str, dict[str, Any]]] = [
    ("kpi_tiles", {"kpis": ["connects", "win_rate"]}),
    ("series", {"kpis": ["meetings_set"], "grain": "week", "points": 5}),
    ("kpi_tree", {}),
    ("funnel", {"mode": "period"}),
    ("leaderboard", {"kpi": "connects", "by": "rep", "first": 3}),
    ("alerts", {"first": 2}),
]


def test_a_new_tenant_gets_a_shared_default_dashboard_per_role(tenant_a: Any) -> None:
    # given a tenant created through the service (the fixture)
    # then
    with tenant_context(tenant_a):
        roles = sorted(Dashboard.objects.values_list("default_for_role", flat=True))
        assert roles == sorted(r.value for r in Role)
        assert set(Dashboard.objects.values_list("is_shared", flat=True)) == {True}
        manager = Dashboard.objects.get(default_for_role=Role.MANAGER)
        kinds = list(manager.widgets.order_by("order").values_list("kind", flat=True))
    assert kinds == ["kpi_tiles", "kpi_tree", "series", "funnel", "leaderboard", "alerts"]


def test_dashboard_data_equals_the_standalone_queries(
    graphql: Any, token_a: str, tenant_a: Any, sales: dict[str, Any]
) -> None:
    # given a dashboard with every kind of widget
    dashboard = make_dashboard(tenant_a, EVERY_KIND)
    team = {"type": "TEAM", "id": to_base64("Team", sales["teams"][0].pk)}
    for scope in (None, team):
        variables = {"id": gid(dashboard), "period": "2026-06", "scope": scope,
                     "comparison": "PREVIOUS_PERIOD"}  # fmt: skip
        # when
        status, body = graphql(DASHBOARD, variables, token=token_a)
        # then every widget shows what its standalone query shows
        assert status == 200 and "errors" not in body, body
        view = body["data"]["dashboard"]
        assert view["period"] == {"label": "2026-06"}
        assert view["comparisonPeriod"] == {"label": "2026-05"}
        widgets = {w["kind"]: w for w in view["widgets"]}
        assert [w["kind"] for w in view["widgets"]] == [k.upper() for k, _ in EVERY_KIND]

        _, values = graphql(
            """query($scope: ScopeInput) { kpiValues(period: "2026-06",
                 kpis: ["calls", "connect_rate", "meetings_set"], scope: $scope,
                 comparison: PREVIOUS_PERIOD) {
               value { kpi { key } value numerator denominator pending }
               comparison { period { label } value numerator } } }""",
            {"scope": scope},
            token=token_a,
        )
        tiles = widgets["KPI_TILES"]["tiles"]
        assert [{"value": t["value"], "comparison": t["comparison"]} for t in tiles] == values[
            "data"
        ]["kpiValues"]

        _, series = graphql(
            f"""query($scope: ScopeInput, $kpi: String!) {{ kpiSeries(kpi: $kpi, grain: MONTH,
                 start: "2026-04-01", end: "2026-06-30", scope: $scope,
                 comparison: PREVIOUS_PERIOD) {{ {SERIES[len("series { ") : -2]} }} }}""",
            {"scope": scope, "kpi": "calls"},
            token=token_a,
        )
        assert widgets["SERIES"]["series"][0] == series["data"]["kpiSeries"]

        _, tree = graphql(
            f"""query($scope: ScopeInput) {{ kpiTree(period: "2026-06", scope: $scope,
                 comparison: PREVIOUS_PERIOD) {{ {TREE[len("tree { ") : -2]} }} }}""",
            {"scope": scope},
            token=token_a,
        )
        assert widgets["KPI_TREE"]["tree"] == tree["data"]["kpiTree"]

        _, funnel = graphql(
            f"""query($scope: ScopeInput) {{ funnel(period: "2026-06", scope: $scope,
                 comparison: PREVIOUS_PERIOD) {{ {FUNNEL[len("funnel { ") : -2]} }} }}""",
            {"scope": scope},
            token=token_a,
        )
        assert widgets["FUNNEL"]["funnel"] == funnel["data"]["funnel"]

        _, board = graphql(
            f"""query {{ leaderboard(kpi: "calls", period: "2026-06", by: REP, first: 2,
                 comparison: PREVIOUS_PERIOD) {{ {BOARD[len("leaderboard { ") : -2]} }} }}""",
            token=token_a,
        )
        assert widgets["LEADERBOARD"]["leaderboard"] == board["data"]["leaderboard"]

        _, alerts = graphql(
            f"query {{ alerts(state: FIRING, first: 5) {{ {ALERTS[len('alerts { ') : -2]} }} }}",
            token=token_a,
        )
        assert widgets["ALERTS"]["alerts"] == alerts["data"]["alerts"]

    # and the numbers themselves: the East team (ren and rio) made 1 + 2 + 4 + 5 calls and
    # has no target of its own
    assert widgets["KPI_TILES"]["tiles"][0]["value"]["numerator"] == "12"
    assert widgets["KPI_TILES"]["tiles"][0]["target"] is None
    # the workspace: 21 calls in June (1 + 2 + ... + 6) against a target of 40
    _, body = graphql(DASHBOARD, {"id": gid(dashboard), "period": "2026-06"}, token=token_a)
    tenant_calls = body["data"]["dashboard"]["widgets"][0]["tiles"][0]
    assert tenant_calls["value"]["numerator"] == "21"
    assert tenant_calls["target"] == "40.0000"
    assert tenant_calls["attainment"] == "0.5250"
    assert tenant_calls["comparison"] is None
    assert body["data"]["dashboard"]["widgets"][5]["alerts"]["totalCount"] == 2  # May and June


def test_the_east_team_tile_counts_only_its_reps(
    graphql: Any, token_a: str, tenant_a: Any, sales: dict[str, Any]
) -> None:
    dashboard = make_dashboard(tenant_a, [("kpi_tiles", {"kpis": ["calls"]})])
    team = {"type": "TEAM", "id": to_base64("Team", sales["teams"][0].pk)}
    _, body = graphql(
        DASHBOARD, {"id": gid(dashboard), "period": "2026-06", "scope": team}, token=token_a
    )
    # ren and rio made the calls of leads 0, 1, 3, 4: 1 + 2 + 4 + 5
    assert body["data"]["dashboard"]["widgets"][0]["tiles"][0]["value"]["numerator"] == "12"


def _count(graphql: Any, token: str, dashboard: Dashboard) -> tuple[int, dict[str, Any]]:
    variables = {"id": gid(dashboard), "period": "2026-06", "comparison": "PREVIOUS_PERIOD"}
    # Funnels computed each time, not served from the cache as the earlier call left them.
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        status, body = graphql(DASHBOARD, variables, token=token)
    assert status == 200 and "errors" not in body, body
    return len(queries.captured_queries), body


def test_the_query_count_stays_flat_from_1_to_12_widgets(
    graphql: Any, token_a: str, tenant_a: Any, sales: dict[str, Any]
) -> None:
    # given dashboards of 1 to 12 tile widgets, and of 6 and 12 widgets of every kind
    graphql(LIST, token=token_a)  # the token's first use records last_used_at
    tiles = [("kpi_tiles", {"kpis": [k]}) for k in ["calls", "connects", "win_rate"] * 4]
    # when
    tile_counts = [_count(graphql, token_a, make_dashboard(tenant_a, tiles[:n]))[0]
                   for n in (1, 6, 12)]  # fmt: skip
    six, _ = _count(graphql, token_a, make_dashboard(tenant_a, EVERY_KIND))
    twelve, body = _count(graphql, token_a, make_dashboard(tenant_a, EVERY_KIND + SIX_MORE))
    # then
    assert len(body["data"]["dashboard"]["widgets"]) == 12
    assert tile_counts[0] == tile_counts[1] == tile_counts[2]
    assert six == twelve
    assert twelve <= 40


def test_writing_widgets_validates_their_config(
    graphql: Any, tenant_a: Any, sales: dict[str, Any]
) -> None:
    token = writer_token(tenant_a)
    dashboard = make_dashboard(tenant_a, [])
    cases = [
        ({"kind": "KPI_TILES", "config": {"kpis": ["calls", "nope"]}}, "Unknown KPI 'nope'."),
        ({"kind": "SERIES", "config": {"kpis": ["calls"], "grain": "year"}},
         "config.grain must be one of day, week, month, quarter."),
        ({"kind": "LEADERBOARD", "config": {"kpi": "calls", "first": 0}},
         "config.first must be a whole number 1 to 100."),
        ({"kind": "FUNNEL", "config": {"mode": "period", "colour": "red"}},
         "Unknown config key 'colour' for a funnel widget."),
        ({"kind": "KPI_TILES", "config": {}}, "config.kpis is required."),
        ({"kind": "ALERTS", "config": [1]}, "config must be a JSON object."),
    ]  # fmt: skip
    for fields, message in cases:
        # when
        _, body = graphql(ADD, {"input": {"dashboardId": gid(dashboard), **fields}}, token=token)
        # then
        payload = body["data"]["addDashboardWidget"]
        assert payload["widget"] is None
        assert payload["errors"] == [{"code": "VALIDATION", "field": "config", "message": message}]
    with tenant_context(tenant_a):
        assert DashboardWidget.objects.filter(dashboard=dashboard).count() == 0
    # and a valid one is stored normalised, with its defaults
    _, body = graphql(
        ADD,
        {"input": {"dashboardId": gid(dashboard), "kind": "SERIES",
                   "config": {"kpis": ["calls"], "grain": "WEEK"}}},
        token=token,
    )  # fmt: skip
    widget = body["data"]["addDashboardWidget"]["widget"]
    assert widget["config"] == {"kpis": ["calls"], "grain": "week", "points": 6}
    assert widget["order"] == 1


def test_a_dashboard_holds_at_most_12_widgets(graphql: Any, tenant_a: Any) -> None:
    token = writer_token(tenant_a)
    dashboard = make_dashboard(tenant_a, [("alerts", {"first": 1})] * 12)
    _, body = graphql(
        ADD, {"input": {"dashboardId": gid(dashboard), "kind": "ALERTS"}}, token=token
    )
    assert body["data"]["addDashboardWidget"]["errors"][0]["code"] == "VALIDATION"
    with tenant_context(tenant_a):
        assert DashboardWidget.objects.filter(dashboard=dashboard).count() == 12


def test_personal_dashboards_are_seen_by_their_owner_only(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    ren, rio = sales["reps"][0], sales["reps"][1]
    # given ren creates a personal dashboard (a rep may: it is theirs)
    _, body = graphql(CREATE, {"input": {"name": "Mine"}}, user=ren.user, tenant="acme")
    created = body["data"]["createDashboard"]["dashboard"]
    assert created["shared"] is False and created["name"] == "Mine"
    _, body = graphql(
        ADD,
        {"input": {"dashboardId": created["id"], "kind": "KPI_TILES",
                   "config": {"kpis": ["calls"]}}},
        user=ren.user, tenant="acme",
    )  # fmt: skip
    assert body["data"]["addDashboardWidget"]["errors"] == []
    # when rio and a token look for it
    for who in ({"user": rio.user, "tenant": "acme"}, {"token": token_a}):
        _, listed = graphql(LIST, **who)
        assert "Mine" not in [d["name"] for d in listed["data"]["dashboards"]["items"]]
        _, body = graphql(DASHBOARD, {"id": created["id"], "period": "2026-06"}, **who)
        # then it does not exist for them
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and ren sees it
    _, listed = graphql(LIST, user=ren.user, tenant="acme")
    assert "Mine" in [d["name"] for d in listed["data"]["dashboards"]["items"]]
    _, body = graphql(
        DASHBOARD, {"id": created["id"], "period": "2026-06"}, user=ren.user, tenant="acme"
    )
    assert body["data"]["dashboard"]["widgets"][0]["tiles"][0]["value"]["numerator"] == "21"


def test_a_shared_dashboard_needs_kpis_write(
    graphql: Any, tenant_a: Any, sales: dict[str, Any]
) -> None:
    ren = sales["reps"][0]
    with tenant_context(tenant_a):
        before = Dashboard.objects.count()
        shared = Dashboard.objects.get(default_for_role=Role.REP)
    # when a rep tries to create a shared dashboard, or add to the shared rep default
    _, body = graphql(CREATE, {"input": {"name": "Ours", "shared": True}}, user=ren.user,
                      tenant="acme")  # fmt: skip
    assert body["data"]["createDashboard"]["errors"][0]["code"] == "PERMISSION_DENIED"
    _, body = graphql(
        ADD, {"input": {"dashboardId": gid(shared), "kind": "ALERTS"}}, user=ren.user,
        tenant="acme",
    )  # fmt: skip
    assert body["data"]["addDashboardWidget"]["errors"][0]["code"] == "PERMISSION_DENIED"
    # then nothing changed
    with tenant_context(tenant_a):
        assert Dashboard.objects.count() == before
        assert shared.widgets.count() == 4


def test_without_an_id_the_role_default_is_shown(
    graphql: Any, tenant_a: Any, sales: dict[str, Any]
) -> None:
    _, body = graphql(DASHBOARD, {"period": "2026-06"}, user=sales["reps"][0].user,
                      tenant="acme")  # fmt: skip
    assert body["data"]["dashboard"]["dashboard"]["name"] == "My activity / 自分の活動"
    _, body = graphql(DASHBOARD, {"period": "2026-06"}, user=sales["manager"].user,
                      tenant="acme")  # fmt: skip
    assert body["data"]["dashboard"]["dashboard"]["name"] == "Team overview / チーム概況"


def test_tenant_b_never_sees_a_dashboard_of_a(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_b: str
) -> None:
    # given A's dashboard with a widget
    dashboard = make_dashboard(tenant_a, [("alerts", {"first": 1})])
    with tenant_context(tenant_a):
        widget = dashboard.widgets.get()
    token = writer_token(tenant_b)
    # when B reads or edits it by id
    _, body = graphql(DASHBOARD, {"id": gid(dashboard), "period": "2026-06"}, token=token_b)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    _, listed = graphql(LIST, token=token_b)
    names = [d["name"] for d in listed["data"]["dashboards"]["items"]]
    assert "Test 1" not in names and listed["data"]["dashboards"]["totalCount"] == 6
    _, body = graphql(
        "mutation($id: ID!) { removeDashboardWidget(id: $id) { errors { code } } }",
        {"id": to_base64("DashboardWidget", widget.pk)},
        token=token,
    )
    assert body["data"]["removeDashboardWidget"]["errors"] == [{"code": "NOT_FOUND"}]
    _, body = graphql(
        "mutation($id: ID!) { deleteDashboard(id: $id) { errors { code } } }",
        {"id": gid(dashboard)},
        token=token,
    )
    assert body["data"]["deleteDashboard"]["errors"] == [{"code": "NOT_FOUND"}]
    # then A's dashboard and widget are untouched
    with tenant_context(tenant_a):
        assert Dashboard.objects.filter(pk=dashboard.pk).exists()
        assert DashboardWidget.objects.filter(pk=widget.pk).exists()


def test_reorder_needs_every_widget_once(graphql: Any, tenant_a: Any) -> None:
    token = writer_token(tenant_a)
    dashboard = make_dashboard(tenant_a, [("alerts", {"first": n}) for n in (1, 2, 3)])
    with tenant_context(tenant_a):
        ids = [to_base64("DashboardWidget", pk) for pk in
               dashboard.widgets.order_by("order").values_list("pk", flat=True)]  # fmt: skip
    query = """mutation($d: ID!, $w: [ID!]!) { reorderDashboardWidgets(dashboardId: $d,
      widgetIds: $w) { dashboard { widgets { id order } } errors { code field } } }"""
    _, body = graphql(query, {"d": gid(dashboard), "w": ids[:2]}, token=token)
    assert body["data"]["reorderDashboardWidgets"]["errors"] == [
        {"code": "VALIDATION", "field": "widgetIds"}
    ]
    _, body = graphql(query, {"d": gid(dashboard), "w": ids[::-1]}, token=token)
    widgets = body["data"]["reorderDashboardWidgets"]["dashboard"]["widgets"]
    assert [w["id"] for w in widgets] == ids[::-1]
    assert [w["order"] for w in widgets] == [1, 2, 3]


def test_the_command_seeds_missing_defaults_only(tenant_a: Any) -> None:
    from django.core.management import call_command

    with tenant_context(tenant_a):
        Dashboard.objects.filter(default_for_role=Role.REP).delete()
    call_command("seed_default_dashboards", "--tenant", "acme")
    call_command("seed_default_dashboards")
    with tenant_context(tenant_a):
        assert Dashboard.objects.count() == 6
        assert Dashboard.objects.filter(default_for_role=Role.REP).count() == 1


def test_bad_period_and_scope_are_typed_errors(graphql: Any, token_a: str, tenant_a: Any) -> None:
    dashboard = make_dashboard(tenant_a, [("alerts", {"first": 1})])
    _, body = graphql(DASHBOARD, {"id": gid(dashboard), "period": "2026-13"}, token=token_a)
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    _, body = graphql(DASHBOARD, {"id": gid(dashboard), "period": "1969-12"}, token=token_a)
    assert body["errors"][0]["extensions"]["code"] == "OUT_OF_RANGE"
    _, body = graphql(
        DASHBOARD,
        {"id": to_base64("Team", dashboard.pk), "period": "2026-06"},
        token=token_a,
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert json.dumps(body).count("Dashboard not found.") == 1


def test_deleting_a_member_deletes_their_personal_dashboards_only(
    tenant_a: Any, sales: dict[str, Any]
) -> None:
    # given ren owns a personal and a shared dashboard
    from tenants.models import Membership

    ren = sales["reps"][0]
    with tenant_context(tenant_a):
        personal = Dashboard.objects.create(tenant=tenant_a, name="Mine", owner=ren,
                                            is_shared=False)  # fmt: skip
        shared = Dashboard.objects.create(tenant=tenant_a, name="Ours", owner=ren)
        # when ren's membership is deleted
        Membership.objects.filter(pk=ren.pk).delete()
        # then
        assert not Dashboard.objects.filter(pk=personal.pk).exists()
        assert Dashboard.objects.get(pk=shared.pk).owner_id is None
