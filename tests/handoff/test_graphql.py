"""The handoff GraphQL API: agreement through both sides, errors as data, scopes, isolation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from strawberry import relay

from handoff.models import AuditEntry, RuleVersion
from tenants import services as tenant_services
from tenants.context import tenant_context

from .conftest import BANT, CLICKED_TWICE_BIG, add_activity, agreed_version, make_lead, member

CREATE_SET = """mutation($name: String!) {
  handoffRuleSetCreate(input: {name: $name}) { ruleSet { id name } errors { code field } }
}"""
CREATE_VERSION = """mutation($set: ID!, $parts: HandoffRuleVersionInput) {
  ruleVersionCreate(ruleSetId: $set, parts: $parts) {
    version { id number status mqlConditions } errors { code field message }
  }
}"""
VERSION_FIELDS = "version { id number status approvals { side memberName } } errors { code field }"
APPROVE = f"mutation($id: ID!) {{ ruleVersionApprove(id: $id) {{ {VERSION_FIELDS} }} }}"
ACTIVATE = f"mutation($id: ID!) {{ ruleVersionActivate(id: $id) {{ {VERSION_FIELDS} }} }}"
UPDATE = f"""mutation($id: ID!, $parts: HandoffRuleVersionInput!) {{
  ruleVersionUpdate(id: $id, parts: $parts) {{ {VERSION_FIELDS} }}
}}"""
COPY = f"mutation($id: ID!) {{ ruleVersionCopy(id: $id) {{ {VERSION_FIELDS} }} }}"
HANDOFF = """mutation($lead: ID!, $fields: JSON) {
  handoffToSql(leadId: $lead, fields: $fields) {
    qualification { stage versionId } missing errors { code field message }
  }
}"""
RULE_SETS = """{ handoffRuleSets { totalCount items { name versions {
  number status approvals { side } } } } }"""
AUDIT = """query($version: ID) { handoffAuditTrail(versionId: $version, first: 3) {
  totalCount items { action actorLabel } } }"""
DRY_RUN = """query($id: ID!) { handoffDryRun(versionId: $id) {
  qualifiedCount qualified { leadId reasons } newlyQualifiedCount noLongerQualifiedCount } }"""


def _gid(type_name: str, pk: int) -> str:
    return relay.to_base64(type_name, pk)


def _user(membership: Any) -> Any:
    return membership.user


def test_both_sides_agree_and_activate_through_the_api(graphql, tenant_a):
    # given a marketer and a field seller of acme
    marketer = member(tenant_a, "mika", "marketing")
    seller = member(tenant_a, "sato", "field_sales")
    as_mika = {"user": marketer.user, "tenant": "acme"}
    _, body = graphql(CREATE_SET, {"name": "Standard"}, **as_mika)
    set_id = body["data"]["handoffRuleSetCreate"]["ruleSet"]["id"]
    parts = {"mqlConditions": CLICKED_TWICE_BIG, "sqlRequirements": BANT}
    _, body = graphql(CREATE_VERSION, {"set": set_id, "parts": parts}, **as_mika)
    version = body["data"]["ruleVersionCreate"]["version"]
    assert (version["number"], version["status"]) == (1, "DRAFT")
    # when marketing approves alone, activation is refused
    _, body = graphql(APPROVE, {"id": version["id"]}, **as_mika)
    assert body["data"]["ruleVersionApprove"]["version"]["status"] == "DRAFT"
    _, body = graphql(ACTIVATE, {"id": version["id"]}, **as_mika)
    assert body["data"]["ruleVersionActivate"]["errors"] == [{"code": "CONFLICT", "field": "id"}]
    # then with sales it is approved, and activates
    _, body = graphql(APPROVE, {"id": version["id"]}, user=seller.user, tenant="acme")
    approved = body["data"]["ruleVersionApprove"]["version"]
    assert approved["status"] == "APPROVED"
    assert approved["approvals"] == [
        {"side": "MARKETING", "memberName": "mika"},
        {"side": "SALES", "memberName": "sato"},
    ]
    _, body = graphql(ACTIVATE, {"id": version["id"]}, user=seller.user, tenant="acme")
    assert body["data"]["ruleVersionActivate"]["version"]["status"] == "ACTIVE"
    # and an edit of it is refused, a copy is a new draft
    _, body = graphql(UPDATE, {"id": version["id"], "parts": {"mqlConditions": {}}}, **as_mika)
    assert body["data"]["ruleVersionUpdate"]["errors"] == [{"code": "CONFLICT", "field": "id"}]
    _, body = graphql(COPY, {"id": version["id"]}, **as_mika)
    assert body["data"]["ruleVersionCopy"]["version"]["number"] == 2
    _, body = graphql(AUDIT, {"version": version["id"]}, **as_mika)
    trail = body["data"]["handoffAuditTrail"]
    assert trail["totalCount"] == 5
    assert trail["items"][0] == {"action": "version_activated", "actorLabel": "sato"}


def test_a_bad_condition_is_an_error_naming_its_path(graphql, tenant_a):
    marketer = member(tenant_a, "mika", "marketing")
    _, body = graphql(CREATE_SET, {"name": "S"}, user=marketer.user, tenant="acme")
    set_id = body["data"]["handoffRuleSetCreate"]["ruleSet"]["id"]
    bad = {"mqlConditions": {"conditions": [{"kind": "activity", "activity": "call",
                                              "days": 9999, "atLeast": 1}]}}  # fmt: skip
    _, body = graphql(CREATE_VERSION, {"set": set_id, "parts": bad}, user=marketer.user,
                      tenant="acme")  # fmt: skip
    payload = body["data"]["ruleVersionCreate"]
    assert payload["version"] is None
    assert payload["errors"][0]["field"] == "mqlConditions.conditions[0].days"
    with tenant_context(tenant_a):
        assert not RuleVersion.objects.exists()


def test_a_rep_cannot_write_rules_and_a_token_cannot_approve(graphql, tenant_a):
    rep = member(tenant_a, "ren", "rep")
    _, body = graphql(CREATE_SET, {"name": "S"}, user=rep.user, tenant="acme")
    assert body["data"]["handoffRuleSetCreate"]["errors"][0]["code"] == "PERMISSION_DENIED"
    _, secret = tenant_services.api_token_create(
        tenant=tenant_a, name="t", scopes=["handoff:read", "handoff:write"]
    )
    _, body = graphql(CREATE_SET, {"name": "S"}, token=secret)
    set_id = body["data"]["handoffRuleSetCreate"]["ruleSet"]["id"]
    _, body = graphql(CREATE_VERSION, {"set": set_id}, token=secret)
    version_id = body["data"]["ruleVersionCreate"]["version"]["id"]
    _, body = graphql(APPROVE, {"id": version_id}, token=secret)
    assert body["data"]["ruleVersionApprove"]["errors"][0]["code"] == "PERMISSION_DENIED"


def test_handoff_to_sql_returns_everything_missing(graphql, tenant_a):
    marketer = member(tenant_a, "mika", "marketing")
    seller = member(tenant_a, "sato", "field_sales")
    agreed_version(tenant_a, marketer, seller)
    lead = make_lead(tenant_a, stage="mql")
    as_sato = {"user": seller.user, "tenant": "acme"}
    # when info is short
    _, body = graphql(HANDOFF, {"lead": _gid("Lead", lead.pk), "fields": {"budget": "1M"}},
                      **as_sato)  # fmt: skip
    # then
    payload = body["data"]["handoffToSql"]
    assert payload["missing"] == [
        "activity:connectedCall", "field:authority", "field:need", "field:timeline"
    ]  # fmt: skip
    assert payload["errors"][0]["code"] == "VALIDATION"
    # and once met, the lead is an SQL
    add_activity(lead, "call", lead.created_at + dt.timedelta(days=1), call_outcome="connected")
    fields = {"budget": "1M", "authority": "CIO", "need": "CRM", "timeline": "Q3"}
    _, body = graphql(HANDOFF, {"lead": _gid("Lead", lead.pk), "fields": fields}, **as_sato)
    assert body["data"]["handoffToSql"]["qualification"]["stage"] == "sql"


def test_tenant_b_never_sees_or_changes_tenant_a_rules(graphql, tenant_a, tenant_b):
    marketer = member(tenant_a, "mika", "marketing")
    seller = member(tenant_a, "sato", "field_sales")
    version = agreed_version(tenant_a, marketer, seller, activate=False)
    lead = make_lead(tenant_a, stage="mql")
    with tenant_context(tenant_a):
        audits = AuditEntry.objects.count()
    bob = member(tenant_b, "bob", "manager")
    as_bob = {"user": bob.user, "tenant": "globex"}
    version_id = _gid("HandoffRuleVersion", version.pk)
    _, body = graphql(RULE_SETS, **as_bob)
    assert body["data"]["handoffRuleSets"] == {"totalCount": 0, "items": []}
    for query, name in ((ACTIVATE, "ruleVersionActivate"), (COPY, "ruleVersionCopy")):
        _, body = graphql(query, {"id": version_id}, **as_bob)
        assert body["data"][name]["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
    _, body = graphql(DRY_RUN, {"id": version_id}, **as_bob)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    _, body = graphql(HANDOFF, {"lead": _gid("Lead", lead.pk)}, **as_bob)
    assert body["data"]["handoffToSql"]["errors"][0]["code"] == "NOT_FOUND"
    with tenant_context(tenant_a):
        assert RuleVersion.objects.get(pk=version.pk).status == "approved"
        assert AuditEntry.objects.count() == audits


def test_rule_sets_read_in_a_bounded_number_of_queries(
    graphql, tenant_a, django_assert_max_num_queries, django_assert_num_queries
):
    marketer = member(tenant_a, "mika", "marketing")
    seller = member(tenant_a, "sato", "field_sales")
    agreed_version(tenant_a, marketer, seller, name="Set 0", activate=False)
    graphql("{ __typename }", user=marketer.user, tenant="acme")  # the login, not measured
    # NOTE: the request's own queries (session, principal, and on PostgreSQL the tenant
    # setting of row-level security) plus four for the page: whatever the sets and versions.
    with django_assert_max_num_queries(18) as one_set:
        graphql(RULE_SETS, tenant="acme")
    for i in range(1, 4):
        agreed_version(tenant_a, marketer, seller, name=f"Set {i}", activate=False)
    with django_assert_num_queries(len(one_set.captured_queries)):
        _, body = graphql(RULE_SETS, tenant="acme")
    items = body["data"]["handoffRuleSets"]["items"]
    assert [len(i["versions"][0]["approvals"]) for i in items] == [2, 2, 2, 2]
    with django_assert_max_num_queries(16):
        _, body = graphql(AUDIT, tenant="acme")
    assert body["data"]["handoffAuditTrail"]["totalCount"] == 4 * 5


def test_a_rule_set_name_taken_is_a_conflict_also_when_racing(graphql, tenant_a, monkeypatch):
    from django.db.models import QuerySet

    marketer = member(tenant_a, "mika", "marketing")
    as_mika = {"user": marketer.user, "tenant": "acme"}
    _, body = graphql(CREATE_SET, {"name": "Standard"}, **as_mika)
    assert body["data"]["handoffRuleSetCreate"]["errors"] == []
    # when the same name is sent again: a typed error on the name
    _, body = graphql(CREATE_SET, {"name": "Standard"}, **as_mika)
    assert body["data"]["handoffRuleSetCreate"]["errors"] == [{"code": "CONFLICT", "field": "name"}]
    # and when another request stored it between the check and the insert (the check sees
    # nothing), the database's unique constraint answers with the same error, not a 500
    from handoff import services
    from tenants.errors import ErrorCode, PublicError

    monkeypatch.setattr(QuerySet, "exists", lambda self: False)
    with tenant_context(tenant_a), pytest.raises(PublicError) as caught:
        services.rule_set_create(tenant=tenant_a, name="Standard", actor=marketer)
    monkeypatch.undo()
    assert (caught.value.code, caught.value.field) == (ErrorCode.CONFLICT, "name")
    # and nothing more was stored or audited
    with tenant_context(tenant_a):
        from handoff.models import RuleSet

        assert RuleSet.objects.filter(name="Standard").count() == 1
        assert AuditEntry.objects.filter(action="rule_set_created").count() == 1
