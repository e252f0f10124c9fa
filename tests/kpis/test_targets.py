"""KPI targets: validation, upserts, one-query reads, suggestions from own history, and the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from strawberry.relay import to_base64

from kpis.models import KpiSnapshot, KpiTarget
from kpis.periods import Grain, parse_period
from kpis.scopes import KpiScope, ScopeType
from kpis.selectors import kpi_definition
from kpis.targets import (
    kpi_target_set,
    kpi_target_suggestion,
    kpi_targets,
)
from tenants import members
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, ValidationFailed
from tenants.scopes import Role
from tests.factories import TeamFactory, TenantOwnedFactory, UserFactory

pytestmark = pytest.mark.django_db

APRIL = parse_period("2025-04")
TENANT = KpiScope.tenant()


class KpiSnapshotFactory(TenantOwnedFactory):
    """A month snapshot of the tenant scope; pass period_start/period_end and measures."""

    class Meta:
        model = KpiSnapshot

    grain = Grain.MONTH
    scope_type = ScopeType.TENANT
    scope_key = ""
    period_start = factory.LazyFunction(lambda: APRIL.start)
    period_end = factory.LazyFunction(lambda: APRIL.end)


def snap(tenant: Any, label: str, scope: KpiScope = TENANT, **measures: Any) -> KpiSnapshot:
    """The snapshot of one period (a label such as 2025-04) and scope with these measures."""
    period = parse_period(label)
    return KpiSnapshotFactory(
        tenant=tenant,
        grain=period.grain,
        period_start=period.start,
        period_end=period.end,
        scope_type=scope.type,
        scope_key=scope.key,
        **measures,
    )


def set_target(tenant: Any, key: str, value: Any, label: str = "2025-04", **kwargs: Any) -> Any:
    return kpi_target_set(
        tenant=tenant,
        kpi_key=key,
        period=parse_period(label),
        scope=kwargs.pop("scope", TENANT),
        value=None if value is None else Decimal(str(value)),
        set_by=kwargs.pop("set_by", None),
    )


def all_targets(tenant: Any) -> list[tuple[str, str, str, Decimal]]:
    with tenant_context(tenant):
        return list(KpiTarget.objects.values_list("kpi_key", "scope_type", "scope_key", "value"))


# --- setting -------------------------------------------------------------------------------


def test_set_upserts_and_none_deletes(tenant_a: Any) -> None:
    # given a target
    first = set_target(tenant_a, "win_rate", "25")
    # when it is set again, then cleared
    second = set_target(tenant_a, "win_rate", "27.5")
    # then the same row was updated
    assert second.pk == first.pk
    assert all_targets(tenant_a) == [("win_rate", "tenant", "", Decimal("27.5000"))]
    assert set_target(tenant_a, "win_rate", None) is None
    assert all_targets(tenant_a) == []


def test_target_is_per_period_grain_and_scope(tenant_a: Any) -> None:
    team = TeamFactory(tenant=tenant_a, name="East")
    set_target(tenant_a, "leads", 400)
    set_target(tenant_a, "leads", 100, scope=KpiScope.team(team.pk))
    set_target(tenant_a, "leads", 1200, label="FY2025-Q1")
    with tenant_context(tenant_a):
        rows = sorted(KpiTarget.objects.values_list("grain", "period_start", "scope_type", "value"))
    assert rows == [
        ("month", APRIL.start, "team", Decimal("100.0000")),
        ("month", APRIL.start, "tenant", Decimal("400.0000")),
        ("quarter", APRIL.start, "tenant", Decimal("1200.0000")),
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("win_rate", "100.0001", "win_rate is a percentage: its target is at most 100."),
        ("leads", "-1", "A target cannot be negative."),
        ("leads", "1.00001", "A target has at most 4 decimal places."),
        ("leads", "NaN", "A target must be a finite number."),
        ("leads", "Infinity", "A target must be a finite number."),
        ("leads", "1E+20", "A target must be below 10^20."),
    ],
)
def test_invalid_values_are_refused_and_nothing_is_written(
    tenant_a: Any, key: str, value: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        set_target(tenant_a, key, value)
    assert (caught.value.code, caught.value.field, caught.value.message) == (
        ErrorCode.VALIDATION,
        "value",
        message,
    )
    assert all_targets(tenant_a) == []


@pytest.mark.parametrize(("key", "value"), [("win_rate", "100"), ("leads", "0"), ("calls", "1.5")])
def test_boundary_values_are_accepted(tenant_a: Any, key: str, value: str) -> None:
    assert set_target(tenant_a, key, value).value == Decimal(value)


def test_a_quarter_of_another_fiscal_calendar_is_refused(tenant_a: Any) -> None:
    # given February to April, a quarter of a February fiscal year (the tenant's starts in April)
    quarter = parse_period("FY2025-Q1", fiscal_year_start_month=2)
    with pytest.raises(ValidationFailed) as caught:
        kpi_target_set(
            tenant=tenant_a,
            kpi_key="leads",
            period=quarter,
            scope=TENANT,
            value=Decimal(1),
            set_by=None,
        )
    assert (caught.value.field, caught.value.message) == (
        "period",
        "FY2025-Q1 is not a quarter of this workspace's calendar.",
    )
    assert all_targets(tenant_a) == []


def test_unknown_kpi_is_not_found(tenant_a: Any) -> None:
    with pytest.raises(NotFound) as caught:
        set_target(tenant_a, "no_such_kpi", 1)
    assert (caught.value.field, caught.value.message) == ("kpi", "KPI 'no_such_kpi' not found.")


def test_another_tenants_team_or_member_is_not_found(tenant_a: Any, tenant_b: Any) -> None:
    # given B's team and member
    team_b = TeamFactory(tenant=tenant_b, name="B team")
    member_b = members.membership_add(
        tenant=tenant_b, user=UserFactory(username="bert"), role=Role.REP
    )
    # when A sets targets on them, or names B's member as the setter, then not found
    for scope in (KpiScope.team(team_b.pk), KpiScope.rep(member_b.pk)):
        with pytest.raises(NotFound):
            set_target(tenant_a, "leads", 10, scope=scope)
    with pytest.raises(NotFound):
        set_target(tenant_a, "leads", 10, set_by=member_b)
    assert all_targets(tenant_a) == []
    assert all_targets(tenant_b) == []


# --- reading -------------------------------------------------------------------------------


def test_kpi_targets_reads_periods_scopes_and_kpis_in_one_query(tenant_a: Any) -> None:
    # given targets in two periods and two scopes
    team = TeamFactory(tenant=tenant_a, name="East")
    east = KpiScope.team(team.pk)
    set_target(tenant_a, "leads", 400)
    set_target(tenant_a, "win_rate", 25)
    set_target(tenant_a, "leads", 90, scope=east)
    set_target(tenant_a, "leads", 300, label="2025-03")
    march = parse_period("2025-03")
    # when
    with tenant_context(tenant_a), CaptureQueriesContext(connection) as queries:
        found = kpi_targets(
            tenant=tenant_a, periods=[APRIL, march], scopes=[TENANT, east], kpi_keys=["leads"]
        )
    # then
    selects = [q for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 1
    assert {key: target.value for key, target in found.items()} == {
        ("leads", APRIL, TENANT): Decimal("400.0000"),
        ("leads", APRIL, east): Decimal("90.0000"),
        ("leads", march, TENANT): Decimal("300.0000"),
    }


def test_targets_of_another_tenant_are_invisible(tenant_a: Any, tenant_b: Any) -> None:
    set_target(tenant_a, "leads", 400)
    assert kpi_targets(tenant=tenant_b, periods=[APRIL], scopes=[TENANT]) == {}
    assert len(kpi_targets(tenant=tenant_a, periods=[APRIL], scopes=[TENANT])) == 1


# --- suggestions ---------------------------------------------------------------------------


def test_suggestion_combines_the_previous_three_periods(tenant_a: Any) -> None:
    # given three months before April (and an older one and April itself, both ignored)
    snap(tenant_a, "2024-12", leads_created=1000, meetings=1000)
    snap(tenant_a, "2025-01", leads_created=100, meetings=10)  # 10 %
    snap(tenant_a, "2025-02", leads_created=300, meetings=90)  # 30 %
    snap(tenant_a, "2025-03", leads_created=200, meetings=0)  # 0 %
    snap(tenant_a, "2025-04", leads_created=5, meetings=5)
    with tenant_context(tenant_a):
        rate = kpi_definition(tenant=tenant_a, key="meeting_rate")
        leads = kpi_definition(tenant=tenant_a, key="leads")
    # when
    rate_suggestion = kpi_target_suggestion(tenant=tenant_a, kpi=rate, period=APRIL, scope=TENANT)
    leads_suggestion = kpi_target_suggestion(tenant=tenant_a, kpi=leads, period=APRIL, scope=TENANT)
    # then the rate is summed meetings ÷ summed leads (100 / 600), not the mean of the rates
    assert rate_suggestion.own_value == Decimal(100) * 100 / Decimal(600)
    assert rate_suggestion.reference_value == Decimal(20)
    assert [p.label for p in rate_suggestion.history_periods] == ["2025-03", "2025-02", "2025-01"]
    assert rate_suggestion.basis == (
        "Own data (自社データ) over 2025-01, 2025-02, 2025-03: summed numerators ÷ summed "
        "denominators; reference 20 (Source article reference value)."
    )
    # and a count is the average per period
    assert leads_suggestion.own_value == Decimal(200)
    assert leads_suggestion.reference_value is None


def test_suggestion_without_history_is_null_beside_the_reference(tenant_a: Any) -> None:
    with tenant_context(tenant_a):
        win_rate = kpi_definition(tenant=tenant_a, key="win_rate")
        leads = kpi_definition(tenant=tenant_a, key="leads")
    for kpi in (win_rate, leads):
        suggestion = kpi_target_suggestion(tenant=tenant_a, kpi=kpi, period=APRIL, scope=TENANT)
        assert suggestion.own_value is None
    assert (
        kpi_target_suggestion(
            tenant=tenant_a, kpi=win_rate, period=APRIL, scope=TENANT
        ).reference_value
        == 25
    )


def test_suggestion_counts_a_month_without_activity_as_zero(tenant_a: Any) -> None:
    # given data in January only: February and March had none
    snap(tenant_a, "2025-01", calls=90)
    with tenant_context(tenant_a):
        calls = kpi_definition(tenant=tenant_a, key="calls")
    suggestion = kpi_target_suggestion(tenant=tenant_a, kpi=calls, period=APRIL, scope=TENANT)
    assert suggestion.own_value == Decimal(30)


def test_suggestion_reads_a_fixed_number_of_queries(
    tenant_a: Any, django_assert_max_num_queries: Any
) -> None:
    with tenant_context(tenant_a):
        kpi = kpi_definition(tenant=tenant_a, key="calls_per_rep_day")
    with django_assert_max_num_queries(8):
        kpi_target_suggestion(tenant=tenant_a, kpi=kpi, period=APRIL, scope=TENANT)


# --- GraphQL ---------------------------------------------------------------------------------

SET = """mutation($input: SetKpiTargetInput!) {
  setKpiTarget(input: $input) {
    target { kpi { key } period { label } scope { type id source } value setById }
    errors { code field message index }
  }
}"""

TARGETS = """query($period: String!, $scope: ScopeInput, $kpis: [String!]) {
  kpiTargets(period: $period, scope: $scope, kpis: $kpis) {
    kpi { key } period { label } scope { type id } value
  }
}"""

SUGGESTION = """query($kpi: String!, $period: String!) {
  kpiTargetSuggestion(kpi: $kpi, period: $period) {
    kpi { key } period { label } ownValue referenceValue referenceSource
    historyPeriods { label } basis
  }
}"""


def test_set_read_and_clear_a_target_over_graphql(
    graphql: Any, tenant_a: Any, planner_token_a: str
) -> None:
    # given a team of A
    team = TeamFactory(tenant=tenant_a, name="East")
    team_id = to_base64("Team", team.pk)
    scope = {"type": "TEAM", "id": team_id}
    # when a target is set
    _, body = graphql(
        SET,
        {"input": {"kpi": "meeting_rate", "period": "2025-04", "scope": scope, "value": "20.5"}},
        token=planner_token_a,
    )
    # then it is returned, and read back
    assert body == {
        "data": {
            "setKpiTarget": {
                "target": {
                    "kpi": {"key": "meeting_rate"},
                    "period": {"label": "2025-04"},
                    "scope": {"type": "TEAM", "id": team_id, "source": None},
                    "value": "20.5000",
                    "setById": None,
                },
                "errors": [],
            }
        }
    }
    _, body = graphql(TARGETS, {"period": "2025-04", "scope": scope}, token=planner_token_a)
    assert body == {
        "data": {
            "kpiTargets": [
                {
                    "kpi": {"key": "meeting_rate"},
                    "period": {"label": "2025-04"},
                    "scope": {"type": "TEAM", "id": team_id},
                    "value": "20.5000",
                }
            ]
        }
    }
    # when it is cleared with a null value
    _, body = graphql(
        SET,
        {"input": {"kpi": "meeting_rate", "period": "2025-04", "scope": scope, "value": None}},
        token=planner_token_a,
    )
    assert body == {"data": {"setKpiTarget": {"target": None, "errors": []}}}
    assert all_targets(tenant_a) == []


def test_a_member_setting_a_target_is_recorded(graphql: Any, tenant_a: Any, admin_a: Any) -> None:
    _, body = graphql(
        SET,
        {"input": {"kpi": "leads", "period": "2025-04", "value": "400"}},
        user=admin_a,
        tenant="acme",
    )
    with tenant_context(tenant_a):
        target = KpiTarget.objects.select_related("set_by__user").get()
    assert target.set_by.user == admin_a
    assert body["data"]["setKpiTarget"]["target"]["setById"] == to_base64(
        "Membership", target.set_by_id
    )


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        (
            {"kpi": "win_rate", "value": "101"},
            ("VALIDATION", "value", "win_rate is a percentage: its target is at most 100."),
        ),
        (
            {"kpi": "leads", "value": "1.23456"},
            ("VALIDATION", "value", "A target has at most 4 decimal places."),
        ),
        ({"kpi": "leads", "value": "-5"}, ("VALIDATION", "value", "A target cannot be negative.")),
        ({"kpi": "nope", "value": "5"}, ("NOT_FOUND", "kpi", "KPI 'nope' not found.")),
        (
            {"kpi": "leads", "value": "5", "period": "2025-13"},
            (
                "VALIDATION",
                "period",
                "'2025-13' is not a valid month period: month must be in 1..12.",
            ),
        ),
    ],
)
def test_invalid_targets_are_typed_errors_and_change_nothing(
    graphql: Any, tenant_a: Any, planner_token_a: str, variables: dict, error: tuple
) -> None:
    _, body = graphql(SET, {"input": {"period": "2025-04", **variables}}, token=planner_token_a)
    assert body == {
        "data": {
            "setKpiTarget": {
                "target": None,
                "errors": [
                    {"code": error[0], "field": error[1], "message": error[2], "index": None}
                ],
            }
        }
    }
    assert all_targets(tenant_a) == []


def test_setting_a_target_needs_kpis_write(graphql: Any, tenant_a: Any, token_a: str) -> None:
    # given a token with kpis:read only
    _, body = graphql(
        SET, {"input": {"kpi": "leads", "period": "2025-04", "value": "1"}}, token=token_a
    )
    assert body["data"]["setKpiTarget"]["errors"] == [
        {
            "code": "PERMISSION_DENIED",
            "field": None,
            "message": "This needs the 'kpis:write' permission.",
            "index": None,
        }
    ]
    assert all_targets(tenant_a) == []


def test_tenant_b_cannot_read_a_targets_or_set_one_on_a_team_of_a(
    graphql: Any, tenant_a: Any, tenant_b: Any, planner_token_b: str
) -> None:
    # given A's team with a target
    team = TeamFactory(tenant=tenant_a, name="East")
    set_target(tenant_a, "leads", 400, scope=KpiScope.team(team.pk))
    set_target(tenant_a, "leads", 900)
    scope = {"type": "TEAM", "id": to_base64("Team", team.pk)}
    # when B sets a target on A's team
    _, body = graphql(
        SET,
        {"input": {"kpi": "leads", "period": "2025-04", "scope": scope, "value": "1"}},
        token=planner_token_b,
    )
    # then it is not found, and nothing changed on either side
    assert body["data"]["setKpiTarget"]["errors"] == [
        {"code": "NOT_FOUND", "field": "scope", "message": "Team not found.", "index": None}
    ]
    assert all_targets(tenant_b) == []
    assert len(all_targets(tenant_a)) == 2
    # and B reads none of A's targets
    _, body = graphql(TARGETS, {"period": "2025-04"}, token=planner_token_b)
    assert body == {"data": {"kpiTargets": []}}
    _, body = graphql(TARGETS, {"period": "2025-04", "scope": scope}, token=planner_token_b)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


def test_kpi_targets_caps_the_kpi_list(graphql: Any, tenant_a: Any, token_a: str) -> None:
    _, body = graphql(
        TARGETS, {"period": "2025-04", "kpis": [f"k{i}" for i in range(101)]}, token=token_a
    )
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION"]


def test_suggestion_over_graphql(graphql: Any, tenant_a: Any, token_a: str) -> None:
    snap(tenant_a, "2025-01", opportunities=3, wins=1)
    snap(tenant_a, "2025-03", opportunities=4, wins=1)
    _, body = graphql(SUGGESTION, {"kpi": "win_rate", "period": "2025-04"}, token=token_a)
    assert body == {
        "data": {
            "kpiTargetSuggestion": {
                "kpi": {"key": "win_rate"},
                "period": {"label": "2025-04"},
                "ownValue": "28.5714",  # 2 ÷ 7 x 100, half up
                "referenceValue": "25",
                "referenceSource": "Source article reference value",
                "historyPeriods": [
                    {"label": "2025-01"},
                    {"label": "2025-02"},
                    {"label": "2025-03"},
                ],
                "basis": (
                    "Own data (自社データ) over 2025-01, 2025-02, 2025-03: summed numerators ÷ "
                    "summed denominators; reference 25 (Source article reference value)."
                ),
            }
        }
    }


# --- admin ---------------------------------------------------------------------------------


def _target_form(**overrides: Any) -> dict[str, Any]:
    return {
        "kpi_key": "win_rate",
        "grain": "month",
        "period_start": "2025-04-01",
        "scope_type": "tenant",
        "scope_key": "",
        "value": "25",
        "set_by": "",
    } | overrides


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"value": "101"}, "win_rate is a percentage: its target is at most 100."),
        ({"kpi_key": "nope"}, "KPI &#x27;nope&#x27; not found."),
        ({"period_start": "2025-04-02"}, "The month containing it starts on 2025-04-01."),
        ({"scope_type": "team", "scope_key": "999999"}, "Team not found."),
    ],
)
def test_admin_validates_targets_like_the_service(
    client: Any, admin_a: Any, tenant_a: Any, overrides: dict, message: str
) -> None:
    client.force_login(admin_a)
    response = client.post("/admin/kpis/kpitarget/add/", _target_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert all_targets(tenant_a) == []


def test_admin_sets_a_target_in_its_tenant(
    client: Any, admin_a: Any, tenant_a: Any, tenant_b: Any
) -> None:
    client.force_login(admin_a)
    response = client.post("/admin/kpis/kpitarget/add/", _target_form(value="27.5"))
    assert response.status_code == 302
    with tenant_context(tenant_a):
        target = KpiTarget.objects.select_related("set_by__user").get()
    assert (target.value, target.set_by.user) == (Decimal("27.5000"), admin_a)
    assert all_targets(tenant_b) == []
    assert client.get("/admin/kpis/kpitarget/").status_code == 200


def test_admin_snapshots_are_read_only(client: Any, admin_a: Any, tenant_a: Any) -> None:
    snapshot = snap(tenant_a, "2025-04", calls=3)
    client.force_login(admin_a)
    assert client.get("/admin/kpis/kpisnapshot/").status_code == 200
    assert client.get("/admin/kpis/kpisnapshot/add/").status_code == 403
    response = client.post(f"/admin/kpis/kpisnapshot/{snapshot.pk}/change/", {"calls": 99})
    assert response.status_code == 403
    with tenant_context(tenant_a):
        assert KpiSnapshot.objects.get().calls == 3
