"""The KPI design checklist (each item failing, then passing) and the shared KPIs."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

from alerts import services as alert_services
from alerts.models import AlertRule
from kpis.definitions import kpi_custom_create
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from kpis.trees import RequiredBasis, kpi_tree_create, kpi_tree_default_evaluate
from reports.checklist import kpi_checklist
from reports.generation import report_generate
from reports.models import ChecklistDecision, DashboardWidget, SharedKpi
from tenants import services
from tenants.context import tenant_context
from tenants.models import ApiToken

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 6, 15, 12, tzinfo=TOKYO)
JUNE = parse_period("2026-06")
ITEMS = [
    "kgi_defined", "ksf_listed", "kpis_from_kgi", "activity_and_outcome",
    "definitions_documented", "targets_from_own_data", "data_automated", "dashboard",
    "review_meetings", "mql_sql_agreed", "handoff_rules", "shared_rates",
    "improvement_actions", "review_cycle", "executive_report",
]  # fmt: skip
CHECKLIST = """{ kpiChecklist { key passed evidence howToPass needsDecision decision } }"""


def judged(tenant: Any) -> dict[str, bool]:
    with tenant_context(tenant):
        results = kpi_checklist(tenant=tenant, now=NOW)
    assert [r.key for r in results] == ITEMS
    return {r.key: r.passed for r in results}


def make_everything_pass(tenant: Any) -> None:
    with tenant_context(tenant):
        tree = kpi_tree_default_evaluate(tenant=tenant, period=JUNE, scope=KpiScope.tenant(),
                                         today=NOW.date())  # fmt: skip
        kgi = tree.nodes[0].kpi.key
        kpi_target_set(tenant=tenant, kpi_key=kgi, period=JUNE, scope=KpiScope.tenant(),
                       value=Decimal(10), set_by=None)  # fmt: skip
        for node in tree.nodes:
            if node.basis == RequiredBasis.REFERENCE and node.kpi is not None:
                kpi_target_set(tenant=tenant, kpi_key=node.kpi.key, period=JUNE,
                               scope=KpiScope.tenant(), value=Decimal(30), set_by=None)  # fmt: skip
        token, _ = services.api_token_create(
            tenant=tenant, name="hubspot", scopes=["records:write"]
        )
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=NOW - dt.timedelta(days=1))
        for item in ChecklistDecision.Item:
            ChecklistDecision.objects.create(tenant=tenant, item=item, value="Mondays 10:00")
        for key in ("meeting_rate", "win_rate"):
            SharedKpi.objects.create(tenant=tenant, kpi_key=key, owner_department="inside_sales")
        alert_services.alert_rule_create(
            tenant=tenant, name="Connect rate", kpi_key="connect_rate", scope_type="tenant",
            scope_key="", grain="month", kind="below_value", threshold=Decimal(10),
            improvement_action="Review the call list.", recipient_roles=["manager"],
            channels=["in_app"],
        )  # fmt: skip
        report_generate(tenant=tenant, kind="executive", period=parse_period("2026-05"),
                        scope=KpiScope.tenant())  # fmt: skip


def test_a_fresh_workspace_fails_what_it_has_not_set_up(tenant_a: Any) -> None:
    # given a new workspace: the default tree (no targets) and the default dashboards
    # then
    assert judged(tenant_a) == {
        "kgi_defined": False, "ksf_listed": True, "kpis_from_kgi": False,
        "activity_and_outcome": True, "definitions_documented": True,
        "targets_from_own_data": False, "data_automated": False, "dashboard": True,
        "review_meetings": False, "mql_sql_agreed": False, "handoff_rules": False,
        "shared_rates": False, "improvement_actions": False, "review_cycle": False,
        "executive_report": False,
    }  # fmt: skip


def test_every_item_passes_once_set_up(tenant_a: Any) -> None:
    # when
    make_everything_pass(tenant_a)
    # then
    assert judged(tenant_a) == dict.fromkeys(ITEMS, True)


def test_the_items_that_pass_by_default_can_fail(tenant_a: Any) -> None:
    # given everything passing
    make_everything_pass(tenant_a)
    with tenant_context(tenant_a):
        # when the default tree is replaced by an empty one, a KPI lacks its definition,
        # the dashboards lose their widgets and a rule its improvement action
        kpi_tree_create(tenant=tenant_a, name="Empty", is_default=True)
        kpi_custom_create(tenant=tenant_a, key="calls_per_connect", name_ja="接続あたり架電",
                          category="activity", layer="quality", numerator="calls",
                          denominator="connects", unit="ratio")  # fmt: skip
        DashboardWidget.objects.all().delete()
        AlertRule.objects.update(improvement_action=" ")
    # then
    result = judged(tenant_a)
    assert [key for key, passed in result.items() if not passed] == [
        "kgi_defined", "ksf_listed", "kpis_from_kgi", "activity_and_outcome",
        "definitions_documented", "dashboard", "improvement_actions",
    ]  # fmt: skip


def test_decisions_are_recorded_over_graphql_with_kpis_write(
    graphql: Any, tenant_a: Any, token_a: str
) -> None:
    query = """mutation($v: String!) { recordChecklistDecision(item: REVIEW_CYCLE, value: $v) {
      item { key passed decision needsDecision } errors { code } } }"""
    # a read-only token is refused and nothing is recorded
    _, body = graphql(query, {"v": "Quarterly"}, token=token_a)
    assert body["data"]["recordChecklistDecision"]["errors"] == [{"code": "PERMISSION_DENIED"}]
    with tenant_context(tenant_a):
        assert not ChecklistDecision.objects.exists()
    scopes = ["kpis:write", "kpis:read"]
    _, writer = services.api_token_create(tenant=tenant_a, name="w", scopes=scopes)
    _, body = graphql(query, {"v": "Quarterly, with the sales director"}, token=writer)
    assert body["data"]["recordChecklistDecision"]["item"] == {
        "key": "review_cycle", "passed": True, "decision": "Quarterly, with the sales director",
        "needsDecision": True,
    }  # fmt: skip
    _, body = graphql(CHECKLIST, token=token_a)
    items = {i["key"]: i for i in body["data"]["kpiChecklist"]}
    assert len(items) == 15
    assert items["review_cycle"]["passed"] is True
    assert items["shared_rates"]["howToPass"] == (
        "Mark meeting_rate and win_rate as shared KPIs (setSharedKpi)."
    )


def test_shared_kpis_show_one_number_for_every_department(
    graphql: Any, tenant_a: Any, token_a: str, sales: dict[str, Any]
) -> None:
    _, writer = services.api_token_create(tenant=tenant_a, name="w", scopes=["kpis:write"])
    set_query = """mutation($kpi: String!) { setSharedKpi(kpi: $kpi, ownerDepartment: MARKETING)
      { sharedKpiKeys errors { code field } } }"""
    # an unknown KPI is refused, naming it
    _, body = graphql(set_query, {"kpi": "nope"}, token=writer)
    assert body["data"]["setSharedKpi"]["errors"] == [{"code": "NOT_FOUND", "field": "kpi"}]
    for kpi in ("meeting_rate", "calls"):
        _, body = graphql(set_query, {"kpi": kpi}, token=writer)
    assert body["data"]["setSharedKpi"]["sharedKpiKeys"] == ["calls", "meeting_rate"]
    # when
    _, body = graphql(
        """{ sharedKpis(period: "2026-06", comparison: PREVIOUS_PERIOD) { period { label }
          kpis { kpi { key nameJa } ownerDepartment target
                 departments { department value { value numerator denominator } } } } }""",
        token=token_a,
    )
    _, values = graphql(
        """{ kpiValues(period: "2026-06", kpis: ["calls", "meeting_rate"])
          { value { value numerator denominator } } }""",
        token=token_a,
    )
    # then each department sees the same number, which is kpiValues' number
    shared = body["data"]["sharedKpis"]["kpis"]
    assert [k["kpi"]["key"] for k in shared] == ["calls", "meeting_rate"]
    assert shared[0]["target"] == "40.0000"
    for kpi, expected in zip(shared, values["data"]["kpiValues"], strict=True):
        assert [d["department"] for d in kpi["departments"]] == [
            "MARKETING", "INSIDE_SALES", "FIELD_SALES"
        ]  # fmt: skip
        assert [d["value"] for d in kpi["departments"]] == [expected["value"]] * 3
    assert shared[1]["departments"][0]["value"]["denominator"] == "6"


def test_tenant_b_sees_neither_the_checklist_nor_the_shared_kpis_of_a(
    graphql: Any, tenant_a: Any, tenant_b: Any, token_b: str
) -> None:
    make_everything_pass(tenant_a)
    _, body = graphql(CHECKLIST, token=token_b)
    passed = {i["key"]: i["passed"] for i in body["data"]["kpiChecklist"]}
    assert passed["review_cycle"] is False and passed["shared_rates"] is False
    _, body = graphql('{ sharedKpis(period: "2026-06") { kpis { kpi { key } } } }', token=token_b)
    assert body["data"]["sharedKpis"]["kpis"] == []
