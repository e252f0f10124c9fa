"""Workspace settings and closures over GraphQL: what they change (days, fiscal periods and
working days of the KPIs), bad input, who may change them, and tenant isolation."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty
from tenants import services
from tenants.context import tenant_context
from tenants.models import Tenant, TenantClosure

UPDATE = """mutation($input: UpdateTenantInput!) {
  updateTenant(input: $input) {
    tenant { name timezone currency fiscalYearStartMonth holidayCountry language }
    errors { code field message }
  }
}"""
ADD_CLOSURE = """mutation($input: AddClosureInput!) {
  addClosure(input: $input) { closure { date name } errors { code field message } }
}"""
REMOVE_CLOSURE = """mutation($date: Date!) {
  removeClosure(date: $date) { removedDate errors { code field message } }
}"""
INGEST = """mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) { rowErrors { index field code message } }
}"""
CALLS = """query($period: String!) {
  kpiValues(period: $period, kpis: ["calls"]) { period { label } value { numerator } }
}"""
WORKING_DAYS = """query($period: String!) { kpiTree(period: $period) { workingDays } }"""
SETTINGS = ("name", "timezone", "currency", "fiscal_year_start_month", "holiday_country")


@pytest.fixture
def config_a(tenant_a: Any) -> str:
    scopes = ["config:write", "records:write", "kpis:read"]
    return services.api_token_create(tenant=tenant_a, name="ops", scopes=scopes)[1]


def run(graphql: Any, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    status, body = graphql(query, variables, token=token)
    assert status == 200 and "errors" not in body, body
    (payload,) = body["data"].values()
    return payload


def settings_of(tenant: Any) -> tuple[Any, ...]:
    fresh = Tenant.objects.get(pk=tenant.pk)
    return tuple(getattr(fresh, name) for name in SETTINGS)


def test_update_changes_only_the_settings_sent(graphql, tenant_a, config_a):
    before = settings_of(tenant_a)
    payload = run(
        graphql,
        UPDATE,
        {"input": {"timezone": "America/New_York", "fiscalYearStartMonth": 10,
                   "holidayCountry": "US", "currency": "usd"}},
        config_a,
    )  # fmt: skip
    assert payload["errors"] == []
    assert payload["tenant"] | {"name": None} == {
        "name": None, "timezone": "America/New_York", "currency": "USD",
        "fiscalYearStartMonth": 10, "holidayCountry": "US", "language": "ja",
    }  # fmt: skip
    assert settings_of(tenant_a) == (before[0], "America/New_York", "USD", 10, "US")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"fiscalYearStartMonth": 13}, "fiscalYearStartMonth"),
        ({"fiscalYearStartMonth": 0}, "fiscalYearStartMonth"),
        ({"holidayCountry": "XX"}, "holidayCountry"),
        ({"currency": "円"}, "currency"),
        ({"language": "fr"}, "language"),
        ({"name": "   "}, "name"),
        ({"timezone": None}, "timezone"),
    ],
)
def test_bad_settings_are_typed_errors_and_change_nothing(
    graphql, tenant_a, config_a, change, field
):
    before = settings_of(tenant_a)
    payload = run(graphql, UPDATE, {"input": {"currency": "EUR", **change}}, config_a)
    assert payload["tenant"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("VALIDATION", field)]
    assert settings_of(tenant_a) == before


def test_settings_need_config_write(graphql, tenant_a, token_a):
    before = settings_of(tenant_a)
    for query, variables in (
        (UPDATE, {"input": {"timezone": "UTC"}}),
        (ADD_CLOSURE, {"input": {"date": "2026-08-13"}}),
        (REMOVE_CLOSURE, {"date": "2026-08-13"}),
    ):
        payload = run(graphql, query, variables, token_a)
        assert [e["code"] for e in payload["errors"]] == ["PERMISSION_DENIED"]
    assert settings_of(tenant_a) == before


def test_a_tenant_changes_only_its_own_settings_and_closures(graphql, tenant_a, tenant_b):
    config_b = services.api_token_create(tenant=tenant_b, name="ops", scopes=["config:write"])[1]
    before = settings_of(tenant_a)
    run(graphql, UPDATE, {"input": {"timezone": "Europe/London"}}, config_b)
    run(graphql, ADD_CLOSURE, {"input": {"date": "2026-08-13", "name": "お盆"}}, config_b)
    assert settings_of(tenant_a) == before
    assert settings_of(tenant_b)[1] == "Europe/London"
    with tenant_context(tenant_a):
        assert not TenantClosure.objects.exists()
    with tenant_context(tenant_b):
        assert list(TenantClosure.objects.values_list("name", flat=True)) == ["お盆"]


def test_closures_change_working_days_at_once(graphql, tenant_a, config_a):
    # given May 2026 in Japan: 21 weekdays less 憲法記念日's substitute (6 May), みどりの日
    # (4 May) and こどもの日 (5 May)
    (tree,) = run(graphql, WORKING_DAYS, {"period": "2026-05"}, config_a).values()
    assert tree == 18
    # when the workspace closes on a Thursday and a Saturday
    for day in ("2026-05-07", "2026-05-09"):
        added = run(graphql, ADD_CLOSURE, {"input": {"date": day, "name": "GW"}}, config_a)
        assert added == {"closure": {"date": day, "name": "GW"}, "errors": []}
    # then only the weekday counts off
    (tree,) = run(graphql, WORKING_DAYS, {"period": "2026-05"}, config_a).values()
    assert tree == 17
    # and a day closed twice, or opened when not closed, is a typed error
    again = run(graphql, ADD_CLOSURE, {"input": {"date": "2026-05-07"}}, config_a)
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("CONFLICT", "date")]
    assert run(graphql, REMOVE_CLOSURE, {"date": "2026-05-07"}, config_a) == {
        "removedDate": "2026-05-07",
        "errors": [],
    }
    missing = run(graphql, REMOVE_CLOSURE, {"date": "2026-05-07"}, config_a)
    assert [(e["code"], e["field"]) for e in missing["errors"]] == [("NOT_FOUND", "date")]
    (tree,) = run(graphql, WORKING_DAYS, {"period": "2026-05"}, config_a).values()
    assert tree == 18


def test_a_new_time_zone_queues_a_rebuild_that_moves_rows_to_their_new_days(
    graphql, tenant_a, config_a, monkeypatch, django_capture_on_commit_callbacks
):
    # given a call at 08:00 in Tokyo on 8 April (19:00 on 7 April in New York), counted
    run(
        graphql,
        INGEST,
        {
            "input": {
                "sourceSystem": "sfa",
                "leads": [{"externalId": "L1", "company": "テスト",
                           "createdAt": "2026-04-01T09:00:00+09:00"}],
                "activities": [{"externalId": "A1", "leadExternalId": "L1", "type": "call",
                                "occurredAt": "2026-04-08T08:00:00+09:00"}],
            }
        },
        config_a,
    )  # fmt: skip
    with tenant_context(tenant_a):
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    assert calls(graphql, config_a, "2026-04-08") == "1"
    queued: list[int] = []
    monkeypatch.setattr("kpis.snapshots.scheduling.kpi_rebuild_schedule", queued.append)
    # when only the name changes, nothing is rebuilt
    with django_capture_on_commit_callbacks(execute=True):
        run(graphql, UPDATE, {"input": {"name": "Acme Japan"}}, config_a)
    assert queued == []
    # when the workspace moves to New York, one rebuild is queued
    with django_capture_on_commit_callbacks(execute=True):
        run(graphql, UPDATE, {"input": {"timezone": "America/New_York"}}, config_a)
    assert queued == [tenant_a.pk]
    # and once it ran, the call is New York's 7 April
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    with tenant_context(tenant):
        kpi_snapshots_rebuild(tenant=tenant)
    assert (calls(graphql, config_a, "2026-04-07"), calls(graphql, config_a, "2026-04-08")) == (
        "1",
        "0",
    )


def test_a_new_fiscal_year_start_queues_a_rebuild(
    graphql, tenant_a, config_a, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr("kpis.snapshots.scheduling.kpi_rebuild_schedule", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        run(graphql, UPDATE, {"input": {"fiscalYearStartMonth": 1}}, config_a)
    assert queued == [tenant_a.pk]


def calls(graphql: Any, token: str, period: str) -> str:
    (value,) = run(graphql, CALLS, {"period": period}, token)
    return value["value"]["numerator"]


def test_demo_tenant_command_takes_the_new_tenants_settings(db, settings):
    settings.DEBUG = True  # the demo command runs in debug mode only
    out = StringIO()
    call_command(
        "demo_tenant", "--tenant", "nyc", "--timezone", "America/New_York",
        "--fiscal-year-start", "10", "--holiday-country", "US", "--currency", "USD", stdout=out,
    )  # fmt: skip
    tenant = Tenant.objects.get(slug="nyc")
    assert (tenant.timezone, tenant.fiscal_year_start_month, tenant.holiday_country) == (
        "America/New_York",
        10,
        "US",
    )
    assert "API token:" in out.getvalue()
    with pytest.raises(CommandError, match="timezone"):
        call_command("demo_tenant", "--tenant", "bad", "--timezone", "Mars/Olympus", stdout=out)
    assert not Tenant.objects.filter(slug="bad").exists()
