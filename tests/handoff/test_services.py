"""Rule versions: agreement by both sides, edits, activation, audit, handoff to SQL."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff import services
from handoff.models import Approval, AuditEntry, Qualification, RuleVersion
from handoff.qualification import RequirementsMissing, handoff_to_sql
from handoff.selectors import active_version, active_version_at
from pipeline.models import Lead, StageTransition
from tenants.context import tenant_context
from tenants.errors import ErrorCode, NotFound, PermissionDenied, PublicError, ValidationFailed
from tenants.scopes import Role

from .conftest import BANT, CLICKED_TWICE_BIG, NOW, add_activity, agreed_version, make_lead, member

DAY = dt.timedelta(days=1)


def _draft(tenant, name="Standard", **parts):
    with tenant_context(tenant):
        rule_set = services.rule_set_create(tenant=tenant, name=name)
        return services.rule_version_create(
            tenant=tenant,
            rule_set=rule_set,
            parts={"mql_conditions": CLICKED_TWICE_BIG, "sql_requirements": BANT, **parts},
        )


def test_one_side_alone_leaves_a_version_a_draft(tenant_a, marketer):
    # given
    version = _draft(tenant_a)
    with tenant_context(tenant_a):
        # when
        version = services.rule_version_approve(tenant=tenant_a, version=version, member=marketer)
        # then
        assert version.status == "draft"
        with pytest.raises(PublicError) as caught:
            services.rule_version_activate(tenant=tenant_a, version=version)
        assert caught.value.code == ErrorCode.CONFLICT
        assert active_version() is None


@pytest.mark.parametrize("sales_role", [Role.FIELD_SALES, Role.MANAGER])
def test_marketing_and_sales_together_approve_and_activation_follows(
    tenant_a, marketer, sales_role
):
    # given
    sales = member(tenant_a, "sales", sales_role)
    version = _draft(tenant_a)
    with tenant_context(tenant_a):
        services.rule_version_approve(tenant=tenant_a, version=version, member=sales)
        # when
        version = services.rule_version_approve(tenant=tenant_a, version=version, member=marketer)
        assert version.status == "approved"
        version = services.rule_version_activate(tenant=tenant_a, version=version, at=NOW)
        # then
        assert version.status == "active"
        assert active_version() == version
        assert sorted(Approval.objects.values_list("side", flat=True)) == ["marketing", "sales"]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.REP, Role.VIEWER])
def test_other_roles_cannot_approve(tenant_a, role):
    version = _draft(tenant_a)
    someone = member(tenant_a, "someone", role)
    with tenant_context(tenant_a), pytest.raises(PermissionDenied):
        services.rule_version_approve(tenant=tenant_a, version=version, member=someone)
    with tenant_context(tenant_a):
        assert Approval.objects.count() == 0


def test_the_same_side_cannot_approve_twice(tenant_a, marketer):
    version = _draft(tenant_a)
    other_marketer = member(tenant_a, "mina", Role.MARKETING)
    with tenant_context(tenant_a):
        services.rule_version_approve(tenant=tenant_a, version=version, member=marketer)
        with pytest.raises(PublicError) as caught:
            services.rule_version_approve(tenant=tenant_a, version=version, member=other_marketer)
        assert caught.value.code == ErrorCode.CONFLICT
        assert RuleVersion.objects.get(pk=version.pk).status == "draft"


def test_editing_an_approved_version_is_refused_and_a_copy_is_a_new_draft(
    tenant_a, marketer, seller
):
    # given
    version = agreed_version(tenant_a, marketer, seller, activate=False)
    with tenant_context(tenant_a):
        # when
        with pytest.raises(PublicError) as caught:
            services.rule_version_update(
                tenant=tenant_a, version=version, parts={"mql_conditions": {}}
            )
        # then
        assert caught.value.code == ErrorCode.CONFLICT
        assert RuleVersion.objects.get(pk=version.pk).mql_conditions == CLICKED_TWICE_BIG
        copy = services.rule_version_copy(tenant=tenant_a, version=version, actor=marketer)
        assert (copy.number, copy.status, copy.mql_conditions) == (2, "draft", CLICKED_TWICE_BIG)
        assert copy.rule_set_id == version.rule_set_id


def test_editing_a_draft_withdraws_its_approvals_and_is_audited(tenant_a, marketer):
    version = _draft(tenant_a)
    with tenant_context(tenant_a):
        services.rule_version_approve(tenant=tenant_a, version=version, member=marketer)
        # when
        services.rule_version_update(
            tenant=tenant_a,
            version=version,
            parts={"sql_requirements": {"requiredFields": ["budget"]}},
            actor=marketer,
        )
        # then
        assert Approval.objects.count() == 0
        entry = AuditEntry.objects.filter(action="version_updated").get()
        assert entry.actor == marketer
        assert entry.actor_label == "mika"
        assert entry.details["before"] == {"sqlRequirements": BANT}
        assert entry.details["after"] == {"sqlRequirements": {"requiredFields": ["budget"]}}
        assert entry.details["approvalsWithdrawn"] == ["marketing"]


def test_a_bad_part_is_refused_and_changes_nothing(tenant_a):
    version = _draft(tenant_a)
    with tenant_context(tenant_a):
        with pytest.raises(ValidationFailed) as caught:
            services.rule_version_update(
                tenant=tenant_a,
                version=version,
                parts={"mql_conditions": {"conditions": [{"kind": "industry", "values": "IT"}]}},
            )
        assert caught.value.field == "mqlConditions.conditions[0].values"
        with pytest.raises(ValidationFailed) as caught:
            services.rule_version_update(tenant=tenant_a, version=version, parts={"sla": []})
        assert caught.value.field == "sla"
        assert RuleVersion.objects.get(pk=version.pk).mql_conditions == CLICKED_TWICE_BIG
        assert not AuditEntry.objects.filter(action="version_updated").exists()


def test_activation_retires_the_previous_version_and_history_names_each(tenant_a, marketer, seller):
    # given v1 active since NOW
    first = agreed_version(tenant_a, marketer, seller, activate=False)
    with tenant_context(tenant_a):
        services.rule_version_activate(tenant=tenant_a, version=first, at=NOW)
    second = agreed_version(tenant_a, marketer, seller, name="Stricter", activate=False)
    with tenant_context(tenant_a):
        # when another version is activated a week later
        services.rule_version_activate(tenant=tenant_a, version=second, at=NOW + 7 * DAY)
        # then
        first.refresh_from_db()
        assert (first.status, first.retired_at) == ("retired", NOW + 7 * DAY)
        assert active_version_at(NOW - DAY) is None
        assert active_version_at(NOW) == first
        assert active_version_at(NOW + 7 * DAY - dt.timedelta(seconds=1)) == first
        assert active_version_at(NOW + 7 * DAY) == second
        actions = list(AuditEntry.objects.order_by("at", "pk").values_list("action", "version_id"))
        assert ("version_retired", first.pk) in actions
        assert ("version_activated", second.pk) in actions
        assert RuleVersion.objects.filter(status="active").count() == 1


def test_every_change_is_audited_with_who(tenant_a, marketer, seller):
    version = agreed_version(tenant_a, marketer, seller)
    with tenant_context(tenant_a):
        services.rule_version_retire(tenant=tenant_a, version=version, actor=marketer)
        rows = list(AuditEntry.objects.order_by("at", "pk").values_list("action", "actor_label"))
    assert rows == [
        ("rule_set_created", "system"),
        ("version_created", "mika"),
        ("version_approved", "mika"),
        ("version_approved", "sato"),
        ("version_agreed", "sato"),
        ("version_activated", "sato"),
        ("version_retired", "mika"),
    ]


def test_handoff_to_sql_refused_lists_everything_missing(tenant_a, marketer, seller):
    # given a lead in mql with no call and only a budget
    agreed_version(tenant_a, marketer, seller)
    lead = make_lead(tenant_a, stage="mql", attributes={"budget": "1M"})
    with tenant_context(tenant_a):
        # when
        with pytest.raises(RequirementsMissing) as caught:
            handoff_to_sql(tenant=tenant_a, lead=lead, actor=seller, info={"need": "CRM"}, now=NOW)
        # then
        assert caught.value.missing == [
            "activity:connectedCall",
            "field:authority",
            "field:timeline",
        ]
        assert "field:authority" in caught.value.message
        assert Lead.objects.get(pk=lead.pk).stage == "mql"
        assert Lead.objects.get(pk=lead.pk).attributes == {"budget": "1M"}
        assert not Qualification.objects.exists()


def test_handoff_to_sql_moves_the_lead_and_keeps_the_info(tenant_a, marketer, seller):
    # given
    version = agreed_version(tenant_a, marketer, seller)
    lead = make_lead(tenant_a, stage="mql", attributes={"budget": "1M"})
    add_activity(lead, "call", NOW - DAY, call_outcome="connected")
    info = {"authority": "CIO", "need": "CRM", "timeline": "Q3"}
    with tenant_context(tenant_a):
        # when
        qualification = handoff_to_sql(tenant=tenant_a, lead=lead, actor=seller, info=info, now=NOW)
        # then
        stored = Lead.objects.get(pk=lead.pk)
        assert stored.stage == "sql"
        assert stored.attributes == {"budget": "1M", **info}
        assert (qualification.version, qualification.stage) == (version, "sql")
        transition = StageTransition.objects.get(to_stage="sql")
        assert qualification.transition == transition
        assert (transition.actor, transition.at) == (seller, NOW)
        entry = AuditEntry.objects.get(action="lead_handed_to_sql")
        assert (entry.lead_id, entry.actor) == (lead.pk, seller)


def test_handoff_to_sql_refuses_a_lead_in_the_wrong_stage_and_bad_info(tenant_a, marketer, seller):
    agreed_version(tenant_a, marketer, seller, sql={})
    new = make_lead(tenant_a)
    mql = make_lead(tenant_a, stage="mql")
    with tenant_context(tenant_a):
        with pytest.raises(PublicError) as caught:
            handoff_to_sql(tenant=tenant_a, lead=new, actor=seller, info={})
        assert caught.value.code == ErrorCode.INVALID_TRANSITION
        with pytest.raises(ValidationFailed) as caught:
            handoff_to_sql(tenant=tenant_a, lead=mql, actor=seller, info={"need": "a\x00"})
        assert caught.value.field == "info.need"
        assert Lead.objects.get(pk=mql.pk).stage == "mql"


def test_another_tenants_rows_are_unknown(tenant_a, tenant_b, marketer, seller):
    # given tenant B's version, lead and member
    theirs = _draft(tenant_b, name="Theirs")
    their_member = member(tenant_b, "bob", Role.MARKETING)
    their_lead = make_lead(tenant_b, stage="mql")
    agreed_version(tenant_a, marketer, seller, sql={})
    with tenant_context(tenant_a):
        with pytest.raises(NotFound):
            services.rule_version_approve(tenant=tenant_a, version=theirs, member=marketer)
        version = _draft(tenant_a, name="Ours")
        with pytest.raises(NotFound):
            services.rule_version_approve(tenant=tenant_a, version=version, member=their_member)
        with pytest.raises(NotFound):
            services.rule_version_update(tenant=tenant_a, version=theirs, parts={})
        with pytest.raises(NotFound):
            services.rule_version_copy(tenant=tenant_a, version=theirs)
        with pytest.raises(NotFound):
            handoff_to_sql(tenant=tenant_a, lead=their_lead, actor=seller, info={})
        with pytest.raises(NotFound):
            services.rule_version_create(
                tenant=tenant_a, rule_set=theirs.rule_set, parts={}, actor=marketer
            )
        assert not Approval.objects.filter(version=version).exists()
    with tenant_context(tenant_b):
        assert RuleVersion.objects.get(pk=theirs.pk).status == "draft"
        assert Lead.objects.get(pk=their_lead.pk).stage == "mql"
