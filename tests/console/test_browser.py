"""The web console in a real browser (Debian's chromium through Playwright) on a live server.

A small demo workspace is seeded and rebuilt so numbers exist, with an alert rule that fires.
The member signs in, switches workspace, loads the dashboard, switches period and scope,
opens a tree node, acknowledges an alert and switches language; every number checked on the
page is compared with the API's answer for the same arguments, fetched in the same browser
session. Screenshots go to artifacts/screenshots/ (gitignored).
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from strawberry.relay import to_base64

from alerts.demo import demo_alerts_seed
from alerts.models import Alert
from backend import views as backend_views
from backend.schema import schema
from kpis.demo import demo_targets_seed
from kpis.periods import period_containing
from kpis.scopes import KpiScope
from kpis.snapshots import kpi_snapshots_rebuild
from pipeline.demo import seed_demo
from reports.dashboards import DEFAULT_LAYOUTS, widget_config_validate
from reports.generation import report_generate
from reports.models import Dashboard, DashboardWidget, ReportKind
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.alerts.conftest import make_rule
from tests.factories import TeamFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "artifacts" / "screenshots"
PASSWORD = "console-test-password-2026"
TILE_KPIS = [
    "leads", "calls", "connect_rate", "meetings_set", "meeting_rate", "opportunities",
    "won_deals", "revenue",
]  # fmt: skip

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
    ),
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

# The API's answers for what the page shows, fetched with the page's own session.
API_QUERY = """
query Check($period: String!, $scope: ScopeInput, $kpis: [String!]) {
  kpiValues(period: $period, kpis: $kpis, scope: $scope, comparison: PREVIOUS_PERIOD) {
    value { kpi { key unit } value } comparison { value }
  }
  kpiTargets(period: $period, scope: $scope, kpis: $kpis) { kpi { key } value }
  kpiTree(period: $period, scope: $scope) {
    bottleneckNodeId headcount workingDays
    nodes { id kpi { unit } actual { value } target required attainment }
  }
  funnel(period: $period, scope: $scope) { groups { steps { stage count dropOff } } }
  alerts(state: FIRING) { items { id acknowledgedAt } }
}
"""


# Tells the test each time the console's status line turns to an error.
STATUS_WATCH = """
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  if (!status) return;
  new MutationObserver(() => {
    if (status.classList.contains("error")) window.consoleStatusError(status.textContent);
  }).observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
});
"""


def _fmt_count(value: str | None) -> str:
    """The page's display of a count (en-US / ja-JP grouping, at most 2 decimals)."""
    if value is None:
        return "—"
    number = Decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP).normalize()
    return f"{number:,f}"


def _fmt_percent(value: str | None) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value).quantize(Decimal('0.1'), ROUND_HALF_UP):,f}%"


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    # The page rounds ratio x 100 half away from zero on its shortest decimal form.
    return _fmt_percent(repr(ratio * 100))


@pytest.fixture
def workspace(tenant_a: Any, tenant_b: Any, admin_a: Any) -> dict[str, Any]:
    """Acme with three months of demo data, targets and a firing alert; alice is a member of
    Acme (admin) and Globex (viewer), so she chooses her workspace first."""
    zone = zoneinfo.ZoneInfo(tenant_a.timezone)
    now = dt.datetime.now(zone)
    seed_demo(tenant_slug="acme", leads=250, months=3, seed=11, today=now.date())
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    demo_targets_seed(tenant=tenant_a, today=now.date())
    # A rule that fires whatever the data: fewer than a billion calls this month.
    make_rule(
        tenant_a,
        name="Calls below plan",
        kpi_key="calls",
        threshold=Decimal(1_000_000_000),
        improvement_action="Block two calling hours every morning.",
    )
    demo_alerts_seed(tenant=tenant_a, now=now)
    admin_a.set_password(PASSWORD)
    admin_a.save()
    members.membership_add(tenant=tenant_b, user=admin_a, role=Role.VIEWER)
    team = TeamFactory(tenant=tenant_b, name="Globex team")  # another tenant's team
    with tenant_context(tenant_a):
        firing = Alert.objects.filter(state="firing").count()
        # A shared dashboard with every kind of widget, picked in the console's picker.
        check = Dashboard.objects.create(tenant=tenant_a, name="Console check", is_shared=True)
        layout = [
            ("kpi_tiles", {"kpis": TILE_KPIS}),
            ("kpi_tree", {}),
            ("series", {"kpis": ["calls"], "grain": "week", "points": 8}),
            ("funnel", {"mode": "period"}),
            ("leaderboard", {"kpi": "calls", "by": "rep", "first": 10}),
            ("alerts", {"first": 20}),
        ]
        DashboardWidget.objects.bulk_create(
            DashboardWidget(
                tenant=tenant_a,
                dashboard=check,
                kind=kind,
                order=order,
                config=widget_config_validate(tenant=tenant_a, kind=kind, config=config),
            )
            for order, (kind, config) in enumerate(layout, start=1)
        )
        last_month = period_containing("month", now.date()).previous()
        report, _ = report_generate(
            tenant=tenant_a, kind=ReportKind.MONTHLY, period=last_month, scope=KpiScope.tenant()
        )
    return {
        "tenant": tenant_a,
        "other_team": team,
        "firing": firing,
        "check": to_base64("Dashboard", check.pk),
        "report": to_base64("Report", report.pk),
        "last_month": last_month.label,
    }


@pytest.fixture
def page(live_server: Any, settings: Any) -> Iterator[Any]:
    """A chromium page on the live server (plain http, so cookies without Secure)."""
    from playwright.sync_api import sync_playwright

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="ja-JP"
        )
        # Offline: any request that leaves the live server (a CDN) is refused and recorded.
        outside: list[str] = []

        def only_local(route: Any) -> None:
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        # Every error status any view shows ("Could not load: ..."), even one replaced later.
        shown: list[str] = []
        context.expose_function("consoleStatusError", lambda text: shown.append(text))
        context.add_init_script(STATUS_WATCH)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        failed: list[str] = []
        page.on(
            "response",
            lambda response: (
                failed.append(f"{response.status} {response.url}")
                if response.status >= 500
                else None
            ),
        )
        page.set_default_timeout(20_000)
        yield page
        context.close()
        browser.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert outside == [], f"Requests outside the server: {outside}"
    assert shown == [], f"Error statuses shown: {shown}"
    assert failed == [], f"Server errors: {failed}"


def _api(page: Any, variables: dict[str, Any]) -> dict[str, Any]:
    """The API's answer for `variables`, with the page's session (same cookies, same CSRF)."""
    body = _raw(page, API_QUERY, variables)
    assert "errors" not in body, body
    return body["data"]


def _raw(page: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API's body for `query`, asked through the console's own request queue (its
    api.js module, the page's instance), so it never runs beside one of the page's."""
    return page.evaluate(
        """async ([query, variables]) => {
            const app = document.querySelector('script[type="module"][src*="console/js/app"]');
            const api = await import(new URL("api.js", app.src).href);
            return api.gql(query, variables, {allowErrors: true});
        }""",
        [query, variables or {}],
    )


def _wait_loaded(
    page: Any, *, period: str, scope: str = "TENANT", dashboard: str | None = None
) -> None:
    shown = "" if dashboard is None else f'[data-loaded-dashboard="{dashboard}"]'
    page.wait_for_selector(
        f'#console[data-loaded-period="{period}"][data-loaded-scope="{scope}"]{shown}'
        '[aria-busy="false"]'
    )


def _check_tiles(page: Any, api: dict[str, Any], kpis: list[str] = TILE_KPIS) -> None:
    targets = {t["kpi"]["key"]: t["value"] for t in api["kpiTargets"]}
    shown = page.locator("#tiles .tile")
    assert shown.count() == len(kpis)
    assert [shown.nth(i).get_attribute("data-kpi") for i in range(len(kpis))] == kpis
    for point in api["kpiValues"]:
        key, unit = point["value"]["kpi"]["key"], point["value"]["kpi"]["unit"]
        value = point["value"]["value"]
        tile = page.locator(f'#tiles .tile[data-kpi="{key}"]')
        assert tile.locator(".tile-value").get_attribute("data-value") == (value or "")
        if unit == "count":
            assert tile.locator(".tile-value").inner_text().split("\n")[0] == _fmt_count(value)
        if unit == "percent":
            assert tile.locator(".tile-value").inner_text().split("\n")[0] == _fmt_percent(value)
        previous = point["comparison"]["value"] if point["comparison"] else None
        assert tile.locator(".tile-previous").get_attribute("data-value") == (previous or "")
        target = targets.get(key)
        assert tile.locator(".tile-target").get_attribute("data-value") == (target or "")
        if target is not None and value is not None and Decimal(target) != 0:
            ratio = float(value) / float(target)
            assert float(tile.locator(".tile-attainment").get_attribute("data-value")) == ratio
            assert tile.locator(".tile-attainment").inner_text() == _fmt_ratio(ratio)


def _check_funnel(page: Any, api: dict[str, Any]) -> None:
    steps = api["funnel"]["groups"][0]["steps"]
    rows = page.locator("#funnel tbody tr")
    assert rows.count() == len(steps)
    for step in steps:
        row = page.locator(f'#funnel tr[data-stage="{step["stage"]}"]')
        assert row.locator(".funnel-count").inner_text() == _fmt_count(str(step["count"]))
        drop = step["dropOff"]
        assert row.locator(".funnel-drop").get_attribute("data-value") == (
            "" if drop is None else str(drop)
        )


def test_console_end_to_end(workspace: dict[str, Any], page: Any) -> None:
    tenant = workspace["tenant"]
    today = dt.datetime.now(zoneinfo.ZoneInfo(tenant.timezone)).date()
    month = today.strftime("%Y-%m")
    previous_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")

    # given the login page; when alice signs in with the console's form
    page.goto("/")
    assert page.url.endswith("/app/login/?next=/app/")
    page.get_by_label("ユーザー名").fill("alice")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()

    # then, a member of two workspaces, she is asked to choose one; she picks Acme
    page.wait_for_selector("#choose-workspace:not([hidden])")
    assert page.locator("#workspace option").all_inner_texts() == ["Acme", "Globex"]
    page.select_option("#workspace", "acme")
    page.get_by_role("button", name="切り替え").click()

    # then her role's default dashboard of the current month loads in the tenant's language
    # (Japanese), its widgets in the stored order
    _wait_loaded(page, period=month)
    name, layout = DEFAULT_LAYOUTS[Role.ADMIN]
    assert page.locator("#dashboard-name").inner_text() == name
    assert page.locator("#widgets > .widget").evaluate_all(
        "cards => cards.map(card => card.dataset.widgetKind)"
    ) == [kind.upper() for kind, _ in layout]
    default_tiles = layout[0][1]["kpis"]
    api = _api(page, {"period": month, "scope": None, "kpis": default_tiles})
    _check_tiles(page, api, default_tiles)
    _check_funnel(page, api)
    assert page.locator("#tree-title").inner_text() == "KPIツリー"
    page.screenshot(path=str(SCREENSHOTS / "console-default-dashboard-ja.png"), full_page=True)

    # when she picks the dashboard with every kind of widget
    page.select_option("#dashboard-picker", label="Console check")
    _wait_loaded(page, period=month, dashboard=workspace["check"])
    assert page.locator("#dashboard-name").inner_text() == "Console check"
    assert page.locator("#period-label").inner_text() == month
    api = _api(page, {"period": month, "scope": None, "kpis": TILE_KPIS})
    _check_tiles(page, api)
    _check_funnel(page, api)
    assert page.locator("#series .series-last").count() == 1
    assert page.locator("#leaderboard tbody tr").count() > 0
    page.screenshot(path=str(SCREENSHOTS / "console-dashboard-ja.png"), full_page=True)
    # and the reports panel shows only when the API has reports (feature detection)
    panel = page.locator("#reports-panel[data-detected]")
    panel.wait_for(state="attached")
    has_reports = "Cannot query field" not in str(_raw(page, "{ reports { __typename } }"))
    assert panel.get_attribute("data-detected") == ("present" if has_reports else "absent")
    assert panel.is_visible() == has_reports

    # when she goes to the previous month: one request brings the whole dashboard
    requests: list[str] = []
    page.on(
        "request",
        lambda request: (
            requests.append(request.post_data or "") if request.url.endswith("/graphql/") else None
        ),
    )
    page.get_by_role("button", name="前の期間").click()
    _wait_loaded(page, period=previous_month)
    assert len(requests) == 1 and "ConsoleDashboard" in requests[0]
    # then the tiles and the funnel follow, equal to the API's answer for that month
    api = _api(page, {"period": previous_month, "scope": None, "kpis": TILE_KPIS})
    _check_tiles(page, api)
    _check_funnel(page, api)

    # when she narrows the scope to the first rep (only Acme's reps and teams are offered)
    rep_options = page.locator("#scope optgroup").nth(1).locator("option")
    assert rep_options.count() > 0
    assert "Globex team" not in page.locator("#scope").inner_text()
    rep_value = rep_options.first.get_attribute("value")
    page.select_option("#scope", rep_value)
    rep_type, rep_id = rep_value.split("|")
    _wait_loaded(page, period=previous_month, scope=rep_value)
    rep_scope = {"type": rep_type, "id": rep_id}
    api = _api(page, {"period": previous_month, "scope": rep_scope, "kpis": TILE_KPIS})
    _check_tiles(page, api)
    _check_funnel(page, api)

    # when she goes back to the whole workspace and opens the bottleneck node of the tree
    page.select_option("#scope", "TENANT")
    _wait_loaded(page, period=previous_month)
    api = _api(page, {"period": previous_month, "scope": None, "kpis": TILE_KPIS})
    tree = api["kpiTree"]
    bottleneck = tree["bottleneckNodeId"]
    assert bottleneck is not None
    node_button = page.locator(f'#tree .tree-node[data-node-id="{bottleneck}"]')
    assert "bottleneck" in (node_button.get_attribute("class") or "")
    assert page.locator("#tree .tree-node.bottleneck").count() == 1
    node_button.click()
    # then its detail shows the API's numbers, with the required activity per rep and day
    detail = page.locator("#tree-detail")
    detail.wait_for(state="visible")
    node = next(n for n in tree["nodes"] if n["id"] == bottleneck)
    assert detail.locator(".detail-actual").get_attribute("data-value") == (
        node["actual"]["value"] or ""
    )
    assert detail.locator(".detail-required").get_attribute("data-value") == (
        node["required"] or ""
    )
    assert detail.locator(".detail-attainment").get_attribute("data-value") == (
        node["attainment"] or ""
    )
    per_rep_day = detail.locator(".detail-per-rep-day").inner_text()
    if node["kpi"] and node["kpi"]["unit"] == "count" and node["required"]:
        expected = Decimal(node["required"]) / tree["headcount"] / tree["workingDays"]
        assert per_rep_day == _fmt_count(str(expected.quantize(Decimal("0.1"), ROUND_HALF_UP)))
    else:
        assert per_rep_day == "—"
    page.screenshot(path=str(SCREENSHOTS / "console-tree-node.png"), full_page=True)

    # when she acknowledges the first open alert
    alerts = page.locator("#alerts li.alert")
    assert alerts.count() == min(workspace["firing"], 20) > 0
    first = alerts.first
    alert_id = first.get_attribute("data-alert-id")
    first.get_by_role("button", name="確認済みにする").click()
    # then the page says so and the API agrees; the other alerts are untouched
    page.wait_for_selector(f'#alerts li[data-alert-id="{alert_id}"] .acknowledged')
    items = _api(page, {"period": month, "kpis": ["calls"]})["alerts"]["items"]
    api_alerts = {item["id"]: item["acknowledgedAt"] for item in items}
    assert api_alerts[alert_id] is not None
    assert [i for i, at in api_alerts.items() if at is not None] == [alert_id]

    # when she switches the language to English
    page.select_option("#lang", "en")
    # then every label and KPI name is English, the numbers unchanged
    assert page.locator("#tree-title").inner_text() == "KPI tree"
    assert page.locator('#tiles .tile[data-kpi="calls"] h3').inner_text() == "Calls"
    assert page.get_by_role("button", name="Previous period").count() == 1
    assert page.locator(f'#alerts li[data-alert-id="{alert_id}"] .acknowledged').inner_text() == (
        "✓ Acknowledged"
    )
    _check_tiles(page, api)
    # and the week picker works too
    page.select_option("#grain", "WEEK")
    page.wait_for_selector('#console[data-loaded-period*="-W"][aria-busy="false"]')
    week = page.locator("#period-label").inner_text()
    _check_tiles(page, _api(page, {"period": week, "scope": None, "kpis": TILE_KPIS}))
    page.screenshot(path=str(SCREENSHOTS / "console-dashboard-en-week.png"), full_page=True)

    # and the choices survive a reload (stored in the browser): language and dashboard
    page.reload()
    _wait_loaded(page, period=month, dashboard=workspace["check"])
    assert page.locator("#tree-title").inner_text() == "KPI tree"

    # when she follows a report e-mail's link to the console's view of the report
    report = workspace["report"]
    page.goto(f"/app/#report={report}")
    page.wait_for_selector(f'#report-view[data-report-id="{report}"]:not([hidden])')
    title = page.locator("#report-view-title").inner_text()
    assert title == f"Monthly report {workspace['last_month']}"
    # then the stored HTML shows in a sandboxed frame (the workspace's language)
    heading = page.frame_locator("#report-frame").locator("h1")
    assert "月次レポート" in heading.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "console-report-view.png"), full_page=True)


@pytest.fixture
def alice(admin_a: Any) -> Any:
    """Alice with a password (set before the browser starts: no ORM inside Playwright's loop)."""
    admin_a.set_password(PASSWORD)
    admin_a.save()
    return admin_a


def test_graphiql_works_offline(alice: Any, page: Any, settings: Any, monkeypatch: Any) -> None:
    # given GraphiQL turned on (the view is built at import, so rebuild it) and alice signed in
    settings.GRAPHIQL = True
    monkeypatch.setattr(
        backend_views,
        "_view",
        backend_views.TenantGraphQLView.as_view(
            schema=schema, graphql_ide="graphiql", allow_queries_via_get=False
        ),
    )
    page.goto("/app/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/app/")
    # The console's own requests must be over before leaving: the live server shares one
    # SQLite connection between its threads, so a request cut off mid-way can leave it broken.
    page.wait_for_selector('#console[data-loaded-period][aria-busy="false"]')
    # when she opens /graphql/ with every outside request refused (see the page fixture)
    page.goto("/graphql/", wait_until="networkidle")
    # then GraphiQL renders from our static files and runs a query with her session; its
    # bundle is 3 MB of JavaScript, which a loaded 2-core CI machine parses slowly.
    try:
        page.wait_for_selector(".graphiql-execute-button", timeout=90_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / "graphiql-offline-failed.png"))
        print(page.content()[:4000])
        raise
    assert "Loading..." not in page.locator("#graphiql").inner_text()
    page.click(".graphiql-execute-button")
    page.wait_for_function(
        "document.querySelector('.graphiql-response')?.innerText.includes('alice')"
    )
    page.screenshot(path=str(SCREENSHOTS / "graphiql-offline.png"))


def test_period_labels_in_the_browser_match_the_api(page: Any) -> None:
    # given days around year, ISO-week and fiscal-year edges, and every fiscal start month
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(0, 800, 7)]
    days += [dt.date(2020, 12, 31), dt.date(2021, 1, 3), dt.date(2026, 12, 28), dt.date(2027, 1, 1)]
    cases = [
        (grain, day.isoformat(), start)
        for day in days
        for grain, start in [("WEEK", 4), ("MONTH", 4), *[("QUARTER", m) for m in range(1, 13)]]
    ]
    expected = [
        [p.label, p.start.isoformat(), p.end.isoformat()]
        for p in (
            period_containing(grain.lower(), dt.date.fromisoformat(day), fy)
            for grain, day, fy in cases
        )
    ]
    # when the console's own module computes them (it asks the API by these labels)
    page.goto("/app/login/")
    computed = page.evaluate(
        """async (cases) => {
            const p = await import("/static/console/js/periods.js");
            return cases.map(([grain, day, fy]) => {
              const period = p.periodContaining(grain, new Date(day + "T00:00:00Z"), fy);
              return [period.label, p.isoDate(period.start), p.isoDate(period.end)];
            });
        }""",
        cases,
    )
    # then every label and date range is the API's (kpis/periods.py)
    assert computed == expected
