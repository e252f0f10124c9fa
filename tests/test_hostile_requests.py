"""A corpus of hostile requests to /graphql/ (issue 15 items 1 to 3): each answers JSON with
a typed code and the right HTTP status, never INTERNAL, HTML or a 500, and changes nothing."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from kpis.models import KpiCustomDefinition, KpiSnapshot, KpiTarget, KpiTree, KpiTreeNode
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.targets import kpi_target_set
from pipeline.models import Lead
from tenants import members, services
from tenants.context import tenant_context
from tenants.models import ApiToken, Membership, Team, Tenant, TenantClosure
from tenants.scopes import TOKEN_SCOPES, Role
from tests.factories import UserFactory

BIG = "x" * 100_000
NUL = "a\x00b"


@dataclass(frozen=True)
class Case:
    """One hostile GraphQL request and the refusal it must get."""

    id: str
    query: str
    variables: dict[str, Any] | None = None
    status: int = 200
    code: str = "VALIDATION"
    field: str | None = None
    # "top": a top-level GraphQL error; "payload": a MutationError in the payload's errors.
    where: str = "top"
    session: bool = False  # sent as the signed-in admin (token management needs a user)
    message: str | None = None
    extra: dict[str, str] = dataclasses.field(default_factory=dict)


KV = """query($p: String!, $c: Comparison) {
  kpiValues(period: $p, kpis: ["calls"], comparison: $c) { value { value } }
}"""
SERIES = """query($s: Date!, $e: Date!, $g: Grain!, $c: Comparison) {
  kpiSeries(kpi: "calls", grain: $g, start: $s, end: $e, comparison: $c) { grain }
}"""
SET_TARGET = """mutation($p: String!, $v: Decimal) {
  setKpiTarget(input: {kpi: "calls", period: $p, value: $v}) { errors { code field message } }
}"""
SET_TARGETS = """mutation($p: String!) {
  setKpiTargets(targets: [{kpi: "calls", period: $p, value: "1"}]) { errors { code field } }
}"""
ADD_CLOSURE = """mutation($d: Date!, $n: String! = "") {
  addClosure(input: {date: $d, name: $n}) { errors { code field message } }
}"""
REMOVE_CLOSURE = """mutation($d: Date!) { removeClosure(date: $d) { errors { code field } } }"""
UPDATE_TENANT = """mutation($i: UpdateTenantInput!) {
  updateTenant(input: $i) { errors { code field message } }
}"""
CREATE_TEAM = (
    """mutation($n: String!) { createTeam(input: {name: $n}) { errors { code field } } }"""
)
ADD_MEMBER = """mutation($i: AddMemberInput!) { addMember(input: $i) { errors { code field } } }"""
CREATE_TOKEN = """mutation($i: CreateApiTokenInput!) {
  createApiToken(input: $i) { secret errors { code field } }
}"""
CREATE_KPI = """mutation($n: String!, $v: Decimal) {
  createKpi(input: {key: "own_kpi", nameJa: $n, category: "activity", layer: "volume",
                    numerator: "calls", referenceValue: $v}) { errors { code field } }
}"""
CREATE_TREE = (
    """mutation($n: String!) { createKpiTree(input: {name: $n}) { errors { code field } } }"""
)
LEADERBOARD = """query($f: Int!, $o: Int!) {
  leaderboard(kpi: "calls", period: "2026-01", first: $f, offset: $o) { totalCount }
}"""
CREATE_LEAD = """mutation($i: CreateLeadInput!) { createLead(input: $i) { errors { code } } }"""


def _periods() -> list[Case]:
    out = "OUT_OF_RANGE"
    cases = [
        Case("9999-12", KV, {"p": "9999-12"}, code=out, field="period"),
        Case("0000-01", KV, {"p": "0000-01"}, code=out, field="period"),
        Case("1969-12", KV, {"p": "1969-12"}, code=out, field="period"),
        Case("2101-01", KV, {"p": "2101-01"}, code=out, field="period"),
        Case("FY0001-Q1 vs last year", KV, {"p": "FY0001-Q1", "c": "SAME_PERIOD_LAST_YEAR"},
             code=out, field="period"),
        Case("9999-12 vs previous", KV, {"p": "9999-12", "c": "PREVIOUS_PERIOD"},
             code=out, field="period"),
        Case("1970-01 vs previous", KV, {"p": "1970-01", "c": "PREVIOUS_PERIOD"},
             code=out, field="comparison",
             message="The comparison period 1969-12 of 1970-01 is outside the years 1970 to 2100."),
        Case("1970-W01 vs last year", KV, {"p": "1970-W01", "c": "SAME_PERIOD_LAST_YEAR"},
             code=out, field="comparison"),
        Case("2100-W53", KV, {"p": "2100-W53"}, field="period"),
        Case("2026-13", KV, {"p": "2026-13"}, field="period"),
        Case("2026-W54", KV, {"p": "2026-W54"}, field="period"),
        Case("FY2026-Q5", KV, {"p": "FY2026-Q5"}, field="period"),
        Case("2026-02-30", KV, {"p": "2026-02-30"}, field="period"),
        Case("huge label", KV, {"p": BIG}, field="period"),
        Case("NUL label", KV, {"p": "2026-01\x00"}, field="period"),
        Case("full-width digits", KV, {"p": "２０２６-０１"}, field="period",  # noqa: RUF001
             message="'２０２６-０１' is not a period label: write digits as 0-9."),  # noqa: RUF001
        Case("series 0001..9999", SERIES, {"s": "0001-01-01", "e": "9999-12-31", "g": "DAY"},
             code=out, field="start"),
        Case("series ..9999", SERIES, {"s": "2026-01-01", "e": "9999-12-31", "g": "DAY"},
             code=out, field="end"),
        Case("series from 1970 vs previous", SERIES,
             {"s": "1970-01-01", "e": "1970-01-31", "g": "MONTH", "c": "PREVIOUS_PERIOD"},
             code=out, field="comparison"),
        Case("series bad date", SERIES, {"s": "2026-13-01", "e": "2026-12-31", "g": "DAY"}),
        Case("series bad grain", SERIES, {"s": "2026-01-01", "e": "2026-01-31", "g": "HOUR"}),
        Case("leaderboard 9999", 'query { leaderboard(kpi: "calls", period: "9999-12") '
             "{ totalCount } }", code=out, field="period"),
        Case("funnel 1970 vs previous", 'query { funnel(period: "1970-01", comparison: '
             "PREVIOUS_PERIOD) { groups { key } } }", code=out, field="comparison"),
        Case("kpiTree FY0001", 'query { kpiTree(period: "FY0001-Q1", comparison: '
             "SAME_PERIOD_LAST_YEAR) { workingDays } }", code=out, field="period"),
        Case("kpiTargets 0000", 'query { kpiTargets(period: "0000-01") { value } }',
             code=out, field="period"),
        Case("suggestion 9999", 'query { kpiTargetSuggestion(kpi: "calls", period: "9999-12")'
             " { ownValue } }", code=out, field="period"),
        Case("setKpiTarget 9999", SET_TARGET, {"p": "9999-12", "v": "1"}, code=out,
             field="period", where="payload"),
        Case("setKpiTargets FY0001", SET_TARGETS, {"p": "FY0001-Q1"}, code=out,
             field="period", where="payload"),
        Case("addClosure 0001", ADD_CLOSURE, {"d": "0001-01-01"}, code=out, field="date",
             where="payload"),
        Case("addClosure 9999", ADD_CLOSURE, {"d": "9999-12-31"}, code=out, field="date",
             where="payload"),
        Case("removeClosure 0001", REMOVE_CLOSURE, {"d": "0001-01-01"}, code=out,
             field="date", where="payload"),
        Case("addClosure bad date", ADD_CLOSURE, {"d": "2026-02-30"}),
    ]  # fmt: skip
    return cases


def _numbers_and_text() -> list[Case]:
    out = "OUT_OF_RANGE"
    return [
        Case("target 1e400", SET_TARGET, {"p": "2026-01", "v": "1e400"}, field="value",
             where="payload"),
        Case("target NaN", SET_TARGET, {"p": "2026-01", "v": "NaN"}, field="value",
             where="payload"),
        Case("target negative", SET_TARGET, {"p": "2026-01", "v": "-1"}, field="value",
             where="payload"),
        Case("target scale", SET_TARGET, {"p": "2026-01", "v": "1." + "1" * 100},
             field="value", where="payload"),
        Case("target abc", SET_TARGET, {"p": "2026-01", "v": "abc"}),
        Case("target object", SET_TARGET, {"p": "2026-01", "v": {"a": 1}}),
        Case("target bool", SET_TARGET, {"p": "2026-01", "v": True}),
        Case("first -1", LEADERBOARD, {"f": -1, "o": 0}, field="first"),
        Case("first 2^31", LEADERBOARD, {"f": 2**31, "o": 0}),
        Case("offset 2^40", LEADERBOARD, {"f": 10, "o": 2**40}),
        Case("offset -1", LEADERBOARD, {"f": 10, "o": -1}, field="offset"),
        Case("first null", LEADERBOARD, {"f": None, "o": 0}),
        Case("first 1.5", LEADERBOARD, {"f": 1.5, "o": 0}),
        Case("members first 2^40", "query($f: Int) { members(first: $f) { totalCount } }",
             {"f": 2**40}),
        Case("tenant name NUL", UPDATE_TENANT, {"i": {"name": NUL}}, field="name",
             where="payload"),
        Case("tenant name huge", UPDATE_TENANT, {"i": {"name": BIG}}, field="name",
             where="payload"),
        Case("tenant tz huge", UPDATE_TENANT, {"i": {"timezone": BIG}}, field="timezone",
             where="payload"),
        Case("tenant fiscal 2^40", UPDATE_TENANT, {"i": {"fiscalYearStartMonth": 2**40}}),
        Case("closure name NUL", ADD_CLOSURE, {"d": "2026-05-01", "n": NUL}, field="name",
             where="payload"),
        Case("team NUL", CREATE_TEAM, {"n": NUL}, field="name", where="payload"),
        Case("team huge", CREATE_TEAM, {"n": BIG}, field="name", where="payload"),
        Case("member email NUL", ADD_MEMBER, {"i": {"email": "a\x00@example.com"}},
             field="email", where="payload"),
        Case("member email huge", ADD_MEMBER, {"i": {"email": BIG + "@example.com"}},
             field="email", where="payload"),
        Case("member display name NUL", ADD_MEMBER,
             {"i": {"email": "new@example.com", "displayName": NUL}}, field="displayName",
             where="payload"),
        Case("member unknown role", ADD_MEMBER, {"i": {"email": "n@example.com", "role": "GOD"}}),
        Case("token name NUL", CREATE_TOKEN, {"i": {"name": NUL, "scopes": ["kpis:read"]}},
             field="name", where="payload", session=True),
        Case("token name huge", CREATE_TOKEN, {"i": {"name": BIG, "scopes": ["kpis:read"]}},
             field="name", where="payload", session=True),
        Case("token expires 9999", CREATE_TOKEN,
             {"i": {"name": "t", "scopes": ["kpis:read"],
                    "expiresAt": "9999-12-31T23:59:59-05:00"}},
             code=out, field="expiresAt", where="payload", session=True),
        Case("kpi name NUL", CREATE_KPI, {"n": NUL}, field="nameJa", where="payload"),
        Case("kpi name huge", CREATE_KPI, {"n": BIG}, field="nameJa", where="payload"),
        Case("kpi reference 1e400", CREATE_KPI, {"n": "k", "v": "1e400"}, code=out,
             field="referenceValue", where="payload"),
        Case("tree name NUL", CREATE_TREE, {"n": NUL}, field="name", where="payload"),
        Case("tree name huge", CREATE_TREE, {"n": BIG}, field="name", where="payload"),
        Case("kpi key NUL", 'query { kpiSeries(kpi: "ca\\u0000lls", grain: DAY, '
             'start: "2026-01-01", end: "2026-01-02") { grain } }', code="NOT_FOUND",
             field="kpi", message="KPI 'ca\\x00lls' not found."),
        Case("unknown source", 'query { kpiValues(period: "2026-01", kpis: ["calls"], '
             'scope: {type: SOURCE, source: "nosuch"}) { value { value } } }',
             code="NOT_FOUND", field="scope",
             message="Lead source 'nosuch' not found. No lead has a source yet."),
        Case("source NUL", 'query { kpiValues(period: "2026-01", kpis: ["calls"], '
             'scope: {type: SOURCE, source: "a\\u0000"}) { value { value } } }', field="scope"),
    ]  # fmt: skip


def _variables() -> list[Case]:
    lead = {"company": "c"}
    return [
        Case("externalId null", CREATE_LEAD, {"i": {**lead, "externalId": None}, "x": 1}),
        Case("employeeCount abc", CREATE_LEAD, {"i": {**lead, "employeeCount": "abc"}},
             message="Variable '$i' has invalid value at .employeeCount: Int cannot represent "
             "non-integer value: 'abc'"),
        Case("employeeCount 2^40", CREATE_LEAD, {"i": {**lead, "employeeCount": 2**40}}),
        Case("company null", CREATE_LEAD, {"i": {"company": None}}),
        Case("company list", CREATE_LEAD, {"i": {"company": ["a"]}}),
        Case("company object", CREATE_LEAD, {"i": {"company": {"a": 1}}}),
        Case("unknown input field", CREATE_LEAD, {"i": {**lead, "bogus": 1}}),
        Case("input missing", CREATE_LEAD, {}),
        Case("input a string", CREATE_LEAD, {"i": "lead"}),
        Case("DateTime garbage", CREATE_LEAD, {"i": {**lead, "createdAt": "yesterday"}}),
        Case("DateTime list", "query($d: DateTime) { leads(filter: {createdAt: {from: $d}}) "
             "{ totalCount } }", {"d": [1]}),
        Case("ID object", "query($id: ID!) { lead(id: $id) { id } }", {"id": {"a": 1}}),
        Case("enum unknown", SERIES, {"s": "2026-01-01", "e": "2026-01-02", "g": 1}),
        Case("Decimal list", SET_TARGET, {"p": "2026-01", "v": [1]}),
    ]  # fmt: skip


CASES = _periods() + _numbers_and_text() + _variables()
# "externalId: null" is valid (the id is optional): the lead is created, no refusal.
CASES = [case for case in CASES if case.id != "externalId null"]


def _counts(tenant: Tenant) -> dict[str, Any]:
    """Every row a request could add or change, and the tenant's settings and snapshots."""
    fresh = Tenant.objects.get(pk=tenant.pk)
    with tenant_context(tenant):
        return {
            "settings": (fresh.name, fresh.timezone, fresh.fiscal_year_start_month),
            "teams": Team.objects.count(),
            "members": Membership.objects.count(),
            "closures": TenantClosure.objects.count(),
            "targets": sorted(KpiTarget.objects.values_list("kpi_key", "period_start", "value")),
            "kpis": KpiCustomDefinition.objects.count(),
            "trees": KpiTree.objects.count(),
            "nodes": KpiTreeNode.objects.count(),
            "tokens": ApiToken.objects.count(),
            "leads": Lead.objects.count(),
            "snapshots": sorted(
                KpiSnapshot.objects.values_list("grain", "period_start", "scope_key", "calls")
            ),
        }


@pytest.fixture
def world(tenant_a: Tenant, tenant_b: Tenant) -> dict[str, Any]:
    _, secret = services.api_token_create(tenant=tenant_a, name="ops", scopes=sorted(TOKEN_SCOPES))
    admin = UserFactory(username="root")
    members.membership_add(tenant=tenant_a, user=admin, role=Role.ADMIN)
    kpi_target_set(
        tenant=tenant_a,
        kpi_key="calls",
        period=parse_period("2026-01"),
        scope=KpiScope.tenant(),
        value=Decimal("10"),
        set_by=None,
    )
    services.closure_add(tenant=tenant_a, day=parse_period("2026-05-05").start, name="Golden")
    return {"token": secret, "admin": admin}


def _send(client: Client, case: Case, world: dict[str, Any]) -> Any:
    body = {"query": case.query, "variables": case.variables or {}}
    headers = dict(case.extra)
    if case.session:
        client.force_login(world["admin"])
        headers["HTTP_X_TENANT"] = "acme"
    else:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {world['token']}"
    return client.post(
        "/graphql/", data=json.dumps(body), content_type="application/json", **headers
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_graphql_input_is_a_typed_refusal_that_changes_nothing(
    client: Client, world: dict[str, Any], tenant_a: Tenant, tenant_b: Tenant, case: Case
) -> None:
    # given
    before = (_counts(tenant_a), _counts(tenant_b))
    # when
    response = _send(client, case, world)
    # then
    assert response.status_code == case.status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if case.where == "top":
        assert body["data"] is None, body
        (error,) = body["errors"]
        expected = {"code": case.code} | ({"field": case.field} if case.field else {})
        assert error["extensions"] == expected, body
        message = error["message"]
    else:
        assert "errors" not in body, body
        (payload,) = body["data"].values()
        (error,) = payload["errors"]
        assert (error["code"], error["field"]) == (case.code, case.field), body
        message = error.get("message", "")
    if case.message is not None:
        assert message == case.message
    assert "Unexpected" not in message and "Traceback" not in message
    assert len(message) <= 400
    assert (_counts(tenant_a), _counts(tenant_b)) == before


def test_a_valid_null_in_variables_is_accepted(client: Client, world: dict[str, Any]) -> None:
    # given an optional externalId sent as null through variables
    case = Case("externalId null", CREATE_LEAD, {"i": {"company": "Acme", "externalId": None}})
    # when
    body = _send(client, case, world).json()
    # then the lead is created like the same input inline
    assert body == {"data": {"createLead": {"errors": []}}}


def test_comparison_inside_the_bounds_is_answered(client: Client, world: dict[str, Any]) -> None:
    # given the last period of the range, compared with the one before
    case = Case("2100-12 previous", KV, {"p": "2100-12", "c": "PREVIOUS_PERIOD"})
    # when
    body = _send(client, case, world).json()
    # then both exist: no error
    assert body == {"data": {"kpiValues": [{"value": {"value": "0.0000"}}]}}
