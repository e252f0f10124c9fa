"""Return rules (戻し): field sales return an SQL with one of the version's reasons, SQLs
without a meeting in time go back automatically; accepting, conflicts and isolation."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff.handoffs import (
    handoff_accept,
    handoff_overdue_returns_run,
    handoff_return,
)
from handoff.models import Handoff, HandoffState
from handoff.sla_rules import return_rules_validate
from notifications.models import Event
from pipeline.lifecycle import Stage
from pipeline.models import StageTransition
from pipeline.services import lead_transition
from tenants.context import tenant_context
from tenants.errors import ErrorCode, PermissionDenied, PublicError, ValidationFailed
from tenants.scopes import Role
from tests.handoff.routing.conftest import MONDAY, add_member, make_version, sql_handoff

pytestmark = pytest.mark.django_db


def test_field_sales_return_with_a_reason(tenant_a, sellers) -> None:
    # given an SQL handed to fs1
    fs1 = sellers[0]
    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=MONDAY, owner=fs1)
    # when fs1 returns it
    at = MONDAY + dt.timedelta(hours=2)
    returned = handoff_return(
        handoff=handoff, reason="noBudget", note="next fiscal year", actor=fs1, at=at
    )
    # then the lead is recycled with the reason on its transition
    assert (returned.state, returned.return_reason, returned.returned_at) == (
        HandoffState.RETURNED,
        "noBudget",
        at,
    )
    with tenant_context(tenant_a):
        last = StageTransition.objects.filter(lead=handoff.lead).order_by("-at").first()
        assert (last.from_stage, last.to_stage, last.reason) == (
            Stage.SQL,
            Stage.RECYCLED,
            "noBudget: next fiscal year",
        )
        assert Event.objects.filter(event_type="handoff.returned").count() == 1


def test_unknown_reason_lists_the_allowed_ones_and_changes_nothing(tenant_a, sellers) -> None:
    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=MONDAY, owner=sellers[0])
    with pytest.raises(ValidationFailed) as error:
        handoff_return(handoff=handoff, reason="tooBusy", actor=sellers[0])
    assert error.value.field == "reason"
    assert error.value.message == (
        "Unknown return reason 'tooBusy'; allowed: noBudget, badTiming, notDecisionMaker."
    )
    with tenant_context(tenant_a):
        handoff.refresh_from_db()
        handoff.lead.refresh_from_db()
        assert (handoff.state, handoff.lead.stage) == (HandoffState.AWAITING, Stage.SQL)


def test_only_the_owner_or_a_manager_decides(tenant_a, sellers, field_manager) -> None:
    fs1, fs2, _ = sellers
    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=MONDAY, owner=fs1)
    with pytest.raises(PermissionDenied):
        handoff_accept(handoff=handoff, actor=fs2)
    accepted = handoff_accept(handoff=handoff, actor=field_manager, at=MONDAY)
    assert (accepted.state, accepted.accepted_at) == (HandoffState.ACCEPTED, MONDAY)
    # a decided handoff cannot be decided again
    with pytest.raises(PublicError) as error:
        handoff_return(handoff=handoff, reason="noBudget", actor=fs1)
    assert error.value.code == ErrorCode.CONFLICT


def test_sql_without_a_meeting_in_time_goes_back(tenant_a, sellers) -> None:
    # given two SQLs, one 15 days old and one 13 days old, and a 14-day rule
    version = make_version(tenant_a)
    old = sql_handoff(tenant_a, version, at=MONDAY - dt.timedelta(days=15), company="Old")
    young = sql_handoff(tenant_a, version, at=MONDAY - dt.timedelta(days=13), company="Young")
    # and one SQL that turned into a meeting
    met = sql_handoff(tenant_a, version, at=MONDAY - dt.timedelta(days=20), company="Met")
    lead_transition(lead=met.lead, to_stage=Stage.MEETING, at=MONDAY - dt.timedelta(days=19))
    # when the task runs twice
    first = handoff_overdue_returns_run(tenant=tenant_a, now=MONDAY)
    second = handoff_overdue_returns_run(tenant=tenant_a, now=MONDAY)
    # then only the old one is returned, once, with the reason recorded
    assert (first.returned, second.returned) == (1, 0)
    with tenant_context(tenant_a):
        old.refresh_from_db()
        assert (old.state, old.return_reason) == (HandoffState.RETURNED, "noMeetingInTime")
        old.lead.refresh_from_db()
        assert old.lead.stage == Stage.RECYCLED
        last = StageTransition.objects.filter(lead=old.lead).order_by("-at").first()
        assert last.reason == "noMeetingInTime: no meeting within 14 days"
        young.refresh_from_db()
        assert young.state == HandoffState.AWAITING


def test_no_active_version_returns_nothing(tenant_a) -> None:
    version = make_version(tenant_a, status="draft")
    sql_handoff(tenant_a, version, at=MONDAY - dt.timedelta(days=30))
    assert handoff_overdue_returns_run(tenant=tenant_a, now=MONDAY).returned == 0


def test_another_tenants_member_cannot_decide(tenant_a, tenant_b, sellers) -> None:
    version = make_version(tenant_a)
    handoff = sql_handoff(tenant_a, version, at=MONDAY, owner=sellers[0])
    outsider = add_member(tenant_b, "mallory", Role.MANAGER)
    with pytest.raises(PermissionDenied):
        handoff_accept(handoff=handoff, actor=outsider)
    with tenant_context(tenant_a):
        assert Handoff.objects.get().state == HandoffState.AWAITING


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"meetingWithinDays": 0}, "returnRules.meetingWithinDays"),
        ({"reasons": "noBudget"}, "returnRules.reasons"),
        ({"reasons": ["ok", ""]}, "returnRules.reasons[1]"),
        ({"reasons": ["ok", "ok"]}, "returnRules.reasons[1]"),
        ({"reasons": ["bad\x00"]}, "returnRules.reasons[0]"),
        ({"days": 3}, "returnRules"),
    ],
)
def test_return_rules_validation_names_the_bad_part(rules, field) -> None:
    with pytest.raises(ValidationFailed) as error:
        return_rules_validate(rules)
    assert error.value.field == field
