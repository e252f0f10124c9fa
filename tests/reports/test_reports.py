"""Reports: what is due at local midnight in Tokyo and New York, exactly-once generation,
the content and its HTML, GraphQL reads, regeneration, CSV exports and tenant isolation."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from typing import Any

import pytest
from django.db import connection
from strawberry.relay import to_base64

from kpis.periods import parse_period
from kpis.scopes import KpiScope
from reports.generation import report_generate, reports_due, reports_generate_due
from reports.models import Report
from reports.tasks import generate_due_for_tenant_task
from tenants import services
from tenants.context import tenant_context
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")

REPORTS = """query($kind: ReportKind, $scope: ScopeInput) { reports(kind: $kind, scope: $scope) {
  totalCount items { id kind period { label } scope { type id } language } } }"""
REPORT = "query($id: ID!) { report(id: $id) { id kind period { label } data html } }"


def local(zone: zoneinfo.ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone)


def monthly(tenant: Any) -> list[str]:
    with tenant_context(tenant):
        return sorted(
            Report.objects.filter(kind="monthly", scope_type="tenant").values_list(
                "period_label", flat=True
            )
        )


@pytest.mark.parametrize(("zone", "name"), [(TOKYO, "Asia/Tokyo"), (NEW_YORK, "America/New_York")])
def test_a_month_is_due_from_the_local_midnight_that_closes_it(
    db: None, zone: zoneinfo.ZoneInfo, name: str
) -> None:
    # given a workspace in the zone
    tenant = TenantFactory(slug="zoned", timezone=name)
    # when the beat runs at 23:30 local on the last day of June
    with tenant_context(tenant):
        reports_generate_due(tenant=tenant, now=local(zone, 2026, 6, 30, 23, 30))
    # then June is not due yet (May is the latest closed month)
    assert monthly(tenant) == ["2026-05"]
    # when it runs at 00:30 local on 1 July, and again at 01:30
    with tenant_context(tenant):
        first = reports_generate_due(tenant=tenant, now=local(zone, 2026, 7, 1, 0, 30))
        again = reports_generate_due(tenant=tenant, now=local(zone, 2026, 7, 1, 1, 30))
    # then June's reports are made once
    assert monthly(tenant) == ["2026-05", "2026-06"]
    assert sorted((r.kind, r.period_label) for r in first) == [
        ("executive", "2026-06"), ("monthly", "2026-06")
    ]  # fmt: skip
    assert again == []
    with tenant_context(tenant):
        june = Report.objects.get(kind="monthly", period_label="2026-06", scope_type="tenant")
    assert (june.period_start, june.period_end) == (dt.date(2026, 6, 1), dt.date(2026, 7, 1))


def test_new_york_is_not_due_when_it_is_already_july_in_utc(db: None) -> None:
    # given 23:30 on 30 June in New York, which is 03:30 on 1 July in UTC (and in Tokyo)
    tenant = TenantFactory(slug="ny", timezone="America/New_York")
    now = local(NEW_YORK, 2026, 6, 30, 23, 30)
    assert now.astimezone(dt.UTC).date() == dt.date(2026, 7, 1)
    # then
    due = {d.kind: d.period.label for d in reports_due(tenant=tenant, now=now)}
    assert due == {"weekly": "2026-W26", "monthly": "2026-05", "executive": "2026-05"}


@pytest.mark.parametrize("zone", [TOKYO, NEW_YORK])
def test_a_week_is_due_from_monday_local_midnight(db: None, zone: zoneinfo.ZoneInfo) -> None:
    tenant = TenantFactory(slug="weekly", timezone=str(zone))
    # Sunday 5 July 23:30: week 27 (29 June - 5 July) is still open
    sunday = {
        d.kind: d.period for d in reports_due(tenant=tenant, now=local(zone, 2026, 7, 5, 23, 30))
    }
    monday = {
        d.kind: d.period for d in reports_due(tenant=tenant, now=local(zone, 2026, 7, 6, 0, 30))
    }
    assert sunday["weekly"].label == "2026-W26"
    assert monday["weekly"].label == "2026-W27"
    assert (monday["weekly"].start, monday["weekly"].end) == (
        dt.date(2026, 6, 29),
        dt.date(2026, 7, 6),
    )


def test_one_schedule_gives_the_workspace_each_team_and_each_active_rep_a_report(
    tenant_a: Any, sales: dict[str, Any]
) -> None:
    # when
    with tenant_context(tenant_a):
        created = reports_generate_due(tenant=tenant_a, now=local(TOKYO, 2026, 7, 1, 0, 30))
    # then June's monthly report exists for the workspace, both teams and the three reps
    scopes = sorted((r.scope_type, r.scope_key) for r in created if r.kind == "monthly")
    teams = sorted(str(t.pk) for t in sales["teams"])
    reps = sorted(str(r.pk) for r in sales["reps"])
    assert scopes == sorted(
        [("tenant", "")] + [("team", k) for k in teams] + [("rep", k) for k in reps]
    )
    # the manager has no activity of their own: no rep report for them
    assert ("rep", str(sales["manager"].pk)) not in scopes
    assert [r.scope_type for r in created if r.kind == "executive"] == ["tenant"]


def test_the_report_content_uses_the_kpi_numbers(tenant_a: Any, sales: dict[str, Any]) -> None:
    # when
    with tenant_context(tenant_a):
        report, created = report_generate(
            tenant=tenant_a, kind="monthly", period=parse_period("2026-06"), scope=KpiScope.tenant()
        )
    data = report.data
    # then the per-rep table: ren called 1 + 4, rio 2 + 5, sai 3 + 6 times
    assert created
    rows = {row["label"]: row["values"] for row in data["rep_table"]["rows"]}
    assert data["rep_table"]["kpis"][0] == "calls"
    assert {name: values[0] for name, values in rows.items()} == {
        "ren": "5.0000", "rio": "7.0000", "sai": "9.0000"
    }  # fmt: skip
    # the funnel: 6 leads, each moved to mql
    steps = {s["stage"]: s for s in data["funnel"]["steps"]}
    assert (steps["lead"]["count"], steps["lead"]["previous"]) == (6, 3)
    assert steps["mql"]["count"] == 6
    # biggest movers: calls 6 → 21 (+250 %), connects 4 → 12 (+200 %), ...
    movers = [(m["kpi"], m["change_percent"]) for m in data["movers"]]
    assert movers[:2] == [("calls", "250.0000"), ("connects", "200.0000")]
    assert len(movers) == 5
    # connect rate has 21 and 6 calls: below the sample of 20, so it is not a mover
    assert "connect_rate" not in [k for k, _ in movers]
    # alerts of the period: about June, or fired during June (May's fired on 30 June)
    assert sorted((a["rule"], a["period"]) for a in data["alerts"]) == [
        ("Too few calls", "2026-05"), ("Too few calls", "2026-06")
    ]  # fmt: skip
    # the tree: the same nodes as kpiTree
    assert data["tree"]["nodes"][0]["kind"] == "kgi"
    # and the HTML: Japanese, with inline SVG charts and no external asset
    assert report.language == "ja"
    assert report.html.startswith("<!DOCTYPE html>")
    assert "月次レポート 2026-06" in report.html
    assert report.html.count("<svg") == 2
    assert "src=" not in report.html and "href=" not in report.html


def test_the_executive_report_names_the_kgi_forecast_and_three_gaps(
    tenant_a: Any, sales: dict[str, Any]
) -> None:
    with tenant_context(tenant_a):
        report, _ = report_generate(
            tenant=tenant_a, kind="executive", period=parse_period("2026-06"),
            scope=KpiScope.tenant(),
        )  # fmt: skip
    executive = report.data["executive"]
    tree = report.data["tree"]
    assert executive["kgi"]["kpi"] == tree["nodes"][0]["kpi"]
    assert executive["forecast"] == tree["projected_kgi"]
    gaps = executive["gaps"]
    assert 1 <= len(gaps) <= 3
    attainments = [float(g["attainment"]) for g in gaps]
    assert attainments == sorted(attainments) and all(a < 1 for a in attainments)
    assert "経営層向けレポート" in report.html


def test_english_workspaces_get_english_html_and_text_is_escaped(db: None) -> None:
    tenant = TenantFactory(slug="en", name="<b>Evil</b> Inc", language="en")
    with tenant_context(tenant):
        report, _ = report_generate(
            tenant=tenant, kind="weekly", period=parse_period("2026-W20"), scope=KpiScope.tenant()
        )
    assert "Weekly report 2026-W20" in report.html
    assert "&lt;b&gt;Evil&lt;/b&gt; Inc" in report.html and "<b>Evil" not in report.html


def test_a_duplicate_task_creates_nothing(tenant_a: Any, sales: dict[str, Any]) -> None:
    # given the task ran once
    generate_due_for_tenant_task(tenant_a.pk)
    with tenant_context(tenant_a):
        rows = list(Report.objects.order_by("pk").values_list("pk", "generated_at"))
    # when it runs again (a redelivery, or a second beat)
    result = generate_due_for_tenant_task(tenant_a.pk)
    # then
    assert result == {"tenant_id": tenant_a.pk, "created": 0}
    with tenant_context(tenant_a):
        assert list(Report.objects.order_by("pk").values_list("pk", "generated_at")) == rows


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_generations_make_one_report(db: None) -> None:
    # given
    tenant = TenantFactory(slug="race")
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def generate() -> None:
        try:
            barrier.wait()
            with tenant_context(tenant):
                _, created = report_generate(
                    tenant=tenant, kind="monthly", period=parse_period("2026-06"),
                    scope=KpiScope.tenant(),
                )  # fmt: skip
            results.append(created)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when two workers generate the same report at once
    threads = [threading.Thread(target=generate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then exactly one was created
    assert errors == []
    assert sorted(results) == [False, True]
    with tenant_context(tenant):
        assert Report.objects.count() == 1


def _generate_june(tenant: Any) -> Report:
    with tenant_context(tenant):
        reports_generate_due(tenant=tenant, now=local(TOKYO, 2026, 7, 1, 0, 30))
        return Report.objects.get(kind="monthly", period_label="2026-06", scope_type="tenant")


def test_reports_over_graphql_default_to_the_callers_own_view(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    _generate_june(tenant_a)
    ren, manager = sales["reps"][0], sales["manager"]
    # a rep: their own reports
    _, body = graphql(REPORTS, {"kind": "MONTHLY"}, user=ren.user, tenant="acme")
    items = body["data"]["reports"]["items"]
    assert [(i["period"]["label"], i["scope"]) for i in items] == [
        ("2026-06", {"type": "REP", "id": to_base64("Membership", ren.pk)})
    ]
    # a manager: their team's
    _, body = graphql(REPORTS, {"kind": "MONTHLY"}, user=manager.user, tenant="acme")
    assert body["data"]["reports"]["items"][0]["scope"] == {
        "type": "TEAM", "id": to_base64("Team", manager.team_id)
    }  # fmt: skip
    # a token: the workspace's, both kinds of the month
    _, body = graphql(REPORTS, {}, token=token_a)
    assert sorted(i["kind"] for i in body["data"]["reports"]["items"]) == [
        "EXECUTIVE", "MONTHLY", "WEEKLY"
    ]  # fmt: skip


def test_report_by_id_regenerate_and_csv(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    report = _generate_june(tenant_a)
    rid = to_base64("Report", report.pk)
    _, body = graphql(REPORT, {"id": rid}, token=token_a)
    assert body["data"]["report"]["period"] == {"label": "2026-06"}
    assert body["data"]["report"]["html"] == report.html
    # regenerating needs kpis:write: refused, and nothing changed
    query = "mutation($id: ID!) { regenerateReport(id: $id) { report { id } errors { code } } }"
    _, body = graphql(query, {"id": rid}, token=token_a)
    assert body["data"]["regenerateReport"]["errors"] == [{"code": "PERMISSION_DENIED"}]
    _, writer = services.api_token_create(tenant=tenant_a, name="w", scopes=["kpis:write"])
    _, body = graphql(query, {"id": rid}, token=writer)
    assert body["data"]["regenerateReport"] == {"report": {"id": rid}, "errors": []}
    with tenant_context(tenant_a):
        report.refresh_from_db()
    assert report.regenerated_count == 1
    # CSV of the per-rep table
    _, body = graphql(
        "query($id: ID!) { reportCsv(id: $id, table: REP_TABLE) }", {"id": rid}, token=token_a
    )
    lines = body["data"]["reportCsv"].split("\r\n")
    assert lines[0] == "rep,calls,connects,connect_rate,meetings_set,opportunities,won_deals"
    assert lines[1].startswith("ren,5.0000,")
    # CSV of a leaderboard and a series
    _, body = graphql(
        'query { leaderboardCsv(kpi: "calls", period: "2026-06")'
        ' kpiSeriesCsv(kpi: "calls", grain: MONTH, start: "2026-05-01", end: "2026-06-30") }',
        token=token_a,
    )
    board = body["data"]["leaderboardCsv"].split("\r\n")
    assert board[0] == "rank,label,scope_type,scope_key,value,numerator,denominator"
    assert board[1].startswith("1,sai,rep,")
    assert body["data"]["kpiSeriesCsv"].split("\r\n")[1:3] == [
        "2026-05,6.0000,6,,,", "2026-06,21.0000,21,,,"
    ]  # fmt: skip


def test_csv_cells_cannot_become_formulas(db: None) -> None:
    from reports.exports import csv_text

    assert (
        csv_text(["a"], [["=HYPERLINK(1)"], ["-5"], ["@x"]])
        == "a\r\n'=HYPERLINK(1)\r\n-5\r\n'@x\r\n"
    )


def test_tenant_b_never_sees_a_report_of_a(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_b: str, sales: dict[str, Any]
) -> None:
    report = _generate_june(tenant_a)
    rid = to_base64("Report", report.pk)
    _, body = graphql(REPORT, {"id": rid}, token=token_b)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    _, body = graphql("query($id: ID!) { reportCsv(id: $id) }", {"id": rid}, token=token_b)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    _, body = graphql(REPORTS, {}, token=token_b)
    assert body["data"]["reports"] == {"totalCount": 0, "items": []}
    _, writer = services.api_token_create(tenant=tenant_b, name="w", scopes=["kpis:write"])
    _, body = graphql(
        "mutation($id: ID!) { regenerateReport(id: $id) { errors { code } } }",
        {"id": rid},
        token=writer,
    )
    assert body["data"]["regenerateReport"]["errors"] == [{"code": "NOT_FOUND"}]
    with tenant_context(tenant_a):
        assert Report.objects.get(pk=report.pk).regenerated_count == 0


def test_bad_paging_is_a_typed_error(graphql: Any, token_a: str) -> None:
    _, body = graphql("query { reports(first: 0) { totalCount } }", token=token_a)
    assert body["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "first"}


def test_the_command_generates_what_is_due_once(tenant_a: Any) -> None:
    from django.core.management import call_command

    with tenant_context(tenant_a):
        from reports.models import Dashboard

        Dashboard.objects.all().delete()
    call_command("generate_due_reports", "--tenant", "acme", "--with-dashboards")
    with tenant_context(tenant_a):
        count = Report.objects.count()
        assert Dashboard.objects.count() == 6
    call_command("generate_due_reports")
    with tenant_context(tenant_a):
        # the workspace's weekly, monthly and executive reports of the last closed periods
        assert count == Report.objects.count() == 3
