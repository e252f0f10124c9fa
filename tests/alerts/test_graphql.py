"""Alert rules and alerts over GraphQL: validation naming the field, lifecycle, isolation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from strawberry.relay import to_base64

from alerts.models import Alert, AlertComment, AlertEvent, AlertRule
from kpis.scopes import KpiScope
from tenants import members, services
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.alerts.conftest import MAY, evaluate, make_rule, snapshot
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

CREATE = """
mutation($input: CreateAlertRuleInput!) {
  createAlertRule(input: $input) {
    rule { id name kpi kind threshold minSample scope { type id source } channels
           recipientMemberIds recipientRoles improvementAction grain }
    errors { code field message }
  }
}"""
ALERTS = """
query($state: AlertState) {
  alerts(state: $state) { totalCount items { id state period scope { type }
    rule { name } explanation { value threshold sample improvementAction } } }
}"""
ALERT = """
query($id: ID!) {
  alert(id: $id) { id state assigneeId acknowledgedAt snoozedUntil
    events { kind actor } comments { text author } }
}"""


def _token(tenant: Any, *scopes: str) -> str:
    _, secret = services.api_token_create(tenant=tenant, name="t", scopes=list(scopes))
    return secret


@pytest.fixture
def writer_a(tenant_a: Any) -> str:
    return _token(tenant_a, "kpis:read", "kpis:write")


@pytest.fixture
def member_b(tenant_b: Any) -> Any:
    return members.membership_add(tenant=tenant_b, user=UserFactory(username="bo"), role=Role.REP)


def _input(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Connect rate per rep",
        "kind": "BELOW_VALUE",
        "kpi": "connect_rate",
        "threshold": "60",
        "minSample": "30",
        "scope": {"type": "EVERY_REP"},
        "improvementAction": "Call in the 10-12 window; review the list.",
        "recipientRoles": ["manager"],
        "notifyScopeOwner": True,
    } | fields


def _rules(tenant: Any) -> int:
    with tenant_context(tenant):
        return AlertRule.objects.count()


def test_create_rule(graphql: Any, tenant_a: Any, writer_a: str) -> None:
    # when
    status, body = graphql(CREATE, {"input": _input()}, token=writer_a)
    # then
    payload = body["data"]["createAlertRule"]
    assert status == 200 and payload["errors"] == []
    rule = payload["rule"]
    assert {k: rule[k] for k in ("name", "kpi", "kind", "threshold", "minSample", "grain")} == {
        "name": "Connect rate per rep",
        "kpi": "connect_rate",
        "kind": "BELOW_VALUE",
        "threshold": "60.0000",
        "minSample": "30.0000",
        "grain": "MONTH",
    }
    assert rule["scope"] == {"type": "EVERY_REP", "id": None, "source": None}
    assert rule["channels"] == ["IN_APP"]


@pytest.mark.parametrize(
    ("fields", "code", "field", "message"),
    [
        ({"kpi": "no_such_kpi"}, "NOT_FOUND", "kpi", "KPI 'no_such_kpi' not found."),
        ({"threshold": "-1"}, "VALIDATION", "threshold", None),
        ({"kind": "DROP_VS_PREVIOUS", "threshold": "101", "minSample": None}, "VALIDATION",
         "threshold", None),
        ({"kind": "SILENCE", "kpi": None, "threshold": "0", "minSample": None}, "VALIDATION",
         "threshold", None),
        ({"kpi": "calls"}, "VALIDATION", "minSample", None),
        ({"kind": "BEHIND_PACE", "kpi": "connect_rate", "threshold": "100", "minSample": None},
         "VALIDATION", "kind", None),
        ({"improvementAction": "  "}, "VALIDATION", "improvementAction", None),
        ({"grain": "DAY"}, "VALIDATION", "grain", None),
        ({"recipientRoles": [], "notifyScopeOwner": False}, "VALIDATION", "recipientMemberIds",
         None),
    ],
)  # fmt: skip
def test_bad_input_names_the_field_and_creates_nothing(
    graphql: Any, tenant_a: Any, writer_a: str, fields: Any, code: str, field: str, message: Any
) -> None:
    # when
    _, body = graphql(CREATE, {"input": _input(**fields)}, token=writer_a)
    # then
    payload = body["data"]["createAlertRule"]
    assert payload["rule"] is None
    (error,) = payload["errors"]
    assert (error["code"], error["field"]) == (code, field)
    if message:
        assert error["message"] == message
    assert _rules(tenant_a) == 0


def test_another_tenants_ids_are_not_found_like_missing_ones(
    graphql: Any, tenant_a: Any, tenant_b: Any, writer_a: str, member_b: Any
) -> None:
    # given B's member and team ids, and a missing one
    team_b = TeamFactory(tenant=tenant_b, name="B team")
    cases = [
        ({"recipientMemberIds": [to_base64("Membership", member_b.pk)]}, "recipientMemberIds"),
        ({"recipientMemberIds": [to_base64("Membership", 999_999)]}, "recipientMemberIds"),
        ({"scope": {"type": "TEAM", "id": to_base64("Team", team_b.pk)}}, "scope"),
        ({"scope": {"type": "TEAM", "id": to_base64("Team", 999_999)}}, "scope"),
        ({"scope": {"type": "REP", "id": to_base64("Membership", member_b.pk)}}, "scope"),
    ]
    for fields, field in cases:
        # when
        _, body = graphql(CREATE, {"input": _input(**fields)}, token=writer_a)
        # then
        (error,) = body["data"]["createAlertRule"]["errors"]
        assert (error["code"], error["field"]) == ("NOT_FOUND", field), fields
    assert _rules(tenant_a) == 0


def test_rules_need_kpis_write(graphql: Any, tenant_a: Any) -> None:
    # given a read-only token
    token = _token(tenant_a, "kpis:read")
    # when
    _, body = graphql(CREATE, {"input": _input()}, token=token)
    # then
    (error,) = body["data"]["createAlertRule"]["errors"]
    assert error["code"] == "PERMISSION_DENIED"
    assert _rules(tenant_a) == 0


def test_update_and_delete_rule_and_another_tenants_rule_is_not_found(
    graphql: Any, tenant_a: Any, tenant_b: Any, writer_a: str
) -> None:
    # given a rule in A and one in B
    rule_a = make_rule(tenant_a, name="A rule")
    rule_b = make_rule(tenant_b, name="B rule")
    update = """mutation($input: UpdateAlertRuleInput!) { updateAlertRule(input: $input) {
        rule { name threshold } errors { code field } } }"""
    # when A renames its rule and lowers the threshold
    _, body = graphql(
        update,
        {"input": {"id": to_base64("AlertRule", rule_a.pk), "threshold": "55", "name": "A2"}},
        token=writer_a,
    )
    # then
    assert body["data"]["updateAlertRule"] == {
        "rule": {"name": "A2", "threshold": "55.0000"},
        "errors": [],
    }
    # when A touches B's rule (update, delete)
    _, body = graphql(
        update, {"input": {"id": to_base64("AlertRule", rule_b.pk), "name": "x"}}, token=writer_a
    )
    assert body["data"]["updateAlertRule"]["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
    delete = "mutation($id: ID!) { deleteAlertRule(id: $id) { deletedId errors { code } } }"
    _, body = graphql(delete, {"id": to_base64("AlertRule", rule_b.pk)}, token=writer_a)
    assert body["data"]["deleteAlertRule"]["errors"] == [{"code": "NOT_FOUND"}]
    # then B's rule is unchanged
    with tenant_context(tenant_b):
        assert AlertRule.objects.get().name == "B rule"
    # when A deletes its own
    _, body = graphql(delete, {"id": to_base64("AlertRule", rule_a.pk)}, token=writer_a)
    assert body["data"]["deleteAlertRule"]["errors"] == []
    assert _rules(tenant_a) == 0


@pytest.fixture
def firing_a(tenant_a: Any) -> Alert:
    make_rule(tenant_a)
    snapshot(tenant_a, MAY, KpiScope.tenant(), calls=10, connects=1)
    evaluate(tenant_a)
    with tenant_context(tenant_a):
        return Alert.objects.get()


def test_alerts_list_and_tenant_b_never_sees_them(
    graphql: Any, tenant_a: Any, tenant_b: Any, firing_a: Alert, token_a: str, token_b: str
) -> None:
    # when A lists its firing alerts
    _, body = graphql(ALERTS, {"state": "FIRING"}, token=token_a)
    # then
    page = body["data"]["alerts"]
    assert page["totalCount"] == 1
    (item,) = page["items"]
    assert item["period"] == "2026-05" and item["scope"] == {"type": "TENANT"}
    assert item["explanation"] == {
        "value": "10",
        "threshold": "60",
        "sample": "10",
        "improvementAction": "Review the call list and the talk script.",
    }
    # when B lists, or asks for A's alert by id
    _, body = graphql(ALERTS, {}, token=token_b)
    assert body["data"]["alerts"] == {"totalCount": 0, "items": []}
    _, body = graphql(ALERT, {"id": to_base64("Alert", firing_a.pk)}, token=token_b)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_lifecycle_ack_snooze_assign_comment_with_history(
    graphql: Any, tenant_a: Any, firing_a: Alert, admin_a: Any
) -> None:
    gid = to_base64("Alert", firing_a.pk)
    with tenant_context(tenant_a):
        rep = members.membership_add(
            tenant=tenant_a, user=UserFactory(username="ren"), role=Role.REP
        )
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)
    steps = [
        ("mutation($id: ID!) { acknowledgeAlert(id: $id) { errors { code } } }", {}),
        (
            "mutation($id: ID!, $u: DateTime!) { snoozeAlert(id: $id, until: $u) "
            "{ errors { code } } }",
            {"u": until.isoformat()},
        ),
        (
            "mutation($id: ID!, $m: ID) { assignAlert(id: $id, memberId: $m) { errors { code } } }",
            {"m": to_base64("Membership", rep.pk)},
        ),
        (
            'mutation($id: ID!) { commentOnAlert(id: $id, text: "Calling list fixed") '
            "{ comment { text } errors { code } } }",
            {},
        ),
    ]
    for query, variables in steps:
        # when
        _, body = graphql(query, {"id": gid, **variables}, user=admin_a, tenant="acme")
        # then
        assert next(iter(body["data"].values()))["errors"] == [], query
    _, body = graphql(ALERT, {"id": gid}, user=admin_a, tenant="acme")
    alert = body["data"]["alert"]
    assert alert["assigneeId"] == to_base64("Membership", rep.pk)
    assert alert["acknowledgedAt"] is not None
    assert dt.datetime.fromisoformat(alert["snoozedUntil"]) == until
    assert [e["kind"] for e in alert["events"]] == [
        "FIRED",
        "NOTIFIED",
        "ACKNOWLEDGED",
        "SNOOZED",
        "ASSIGNED",
        "COMMENTED",
    ]
    assert alert["events"][2]["actor"] == "alice"
    assert alert["comments"] == [{"text": "Calling list fixed", "author": "alice"}]


def test_another_tenants_alert_in_every_lifecycle_input_is_not_found(
    graphql: Any, tenant_a: Any, tenant_b: Any, firing_a: Alert, member_b: Any
) -> None:
    # given B's token with every alert permission, A's alert id
    token_b = _token(tenant_b, "kpis:read", "kpis:write")
    gid = to_base64("Alert", firing_a.pk)
    with tenant_context(tenant_a):
        before = Alert.objects.values().get()
        events = AlertEvent.objects.count()
    queries = [
        "mutation($id: ID!) { acknowledgeAlert(id: $id) { errors { code field } } }",
        'mutation($id: ID!) { snoozeAlert(id: $id, until: "2099-01-01T00:00:00+00:00") '
        "{ errors { code field } } }",
        "mutation($id: ID!) { assignAlert(id: $id, memberId: null) { errors { code field } } }",
        'mutation($id: ID!) { commentOnAlert(id: $id, text: "x") { errors { code field } } }',
    ]
    for query in queries:
        # when
        _, body = graphql(query, {"id": gid}, token=token_b)
        # then
        assert next(iter(body["data"].values()))["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
    # and A's member assigned from A with B's member id: not found either
    token_a = _token(tenant_a, "kpis:read")
    _, body = graphql(
        "mutation($id: ID!, $m: ID) { assignAlert(id: $id, memberId: $m) "
        "{ errors { code field } } }",
        {"id": gid, "m": to_base64("Membership", member_b.pk)},
        token=token_a,
    )
    assert body["data"]["assignAlert"]["errors"] == [{"code": "NOT_FOUND", "field": "memberId"}]
    # then nothing changed
    with tenant_context(tenant_a):
        assert Alert.objects.values().get() == before
        assert AlertEvent.objects.count() == events
        assert AlertComment.objects.count() == 0


def test_snooze_in_the_past_is_refused(graphql: Any, firing_a: Alert, token_a: str) -> None:
    # when
    _, body = graphql(
        'mutation($id: ID!) { snoozeAlert(id: $id, until: "2020-01-01T00:00:00+00:00") '
        "{ errors { code field } } }",
        {"id": to_base64("Alert", firing_a.pk)},
        token=token_a,
    )
    # then
    assert body["data"]["snoozeAlert"]["errors"] == [{"code": "VALIDATION", "field": "until"}]
