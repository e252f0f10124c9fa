"""Speed-to-lead reminders: an MQL not touched within the SLA's business hours reminds its
owner once, past twice the SLA its team's managers once; touched or moved on MQLs, and other
tenants' leads, never."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from handoff.notifying import SPEED_TO_LEAD_REMINDER
from handoff.speed_reminders import speed_to_lead_reminders_run
from notifications.models import Event
from pipeline import services as pipeline_services
from pipeline.lifecycle import Stage
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory
from tests.handoff.routing.conftest import TOKYO, add_member, make_lead, make_version

pytestmark = pytest.mark.django_db


def tokyo(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def _mql(tenant: Any, owner: Any, at: dt.datetime, company: str) -> Any:
    with tenant_context(tenant):
        lead = make_lead(tenant, company=company, owner=owner)
        pipeline_services.lead_transition(lead=lead, to_stage=Stage.MQL, at=at)
        return lead


def _sent(tenant: Any) -> list[tuple[str, list[int]]]:
    with tenant_context(tenant):
        return list(
            Event.objects.filter(event_type=SPEED_TO_LEAD_REMINDER)
            .order_by("pk")
            .values_list("dedup_key", "recipient_ids")
        )


def test_untouched_mqls_remind_the_owner_then_the_managers_once(
    tenant_a: Any, tenant_b: Any
) -> None:
    # given a 1-hour speed-to-lead SLA, a rep and her manager
    team = TeamFactory(tenant=tenant_a, name="IS")
    rep = add_member(tenant_a, "rina", Role.REP, team)
    boss = add_member(tenant_a, "boss", Role.MANAGER, team)
    make_version(tenant_a, sla={"speedToLeadHours": 1})
    # and MQLs at Friday 2026-11-13 17:30: one untouched, one e-mailed at 17:50, one moved
    # on to SQL, and one e-mailed only before it became MQL
    friday = tokyo(2026, 11, 13, 17, 30)
    late = _mql(tenant_a, rep, friday, "Late")
    touched = _mql(tenant_a, rep, friday, "Touched")
    moved = _mql(tenant_a, rep, friday, "Moved")
    before = _mql(tenant_a, rep, friday, "Before")
    with tenant_context(tenant_a):
        pipeline_services.activity_create(
            tenant=tenant_a, lead=touched, type="email", occurred_at=tokyo(2026, 11, 13, 17, 50)
        )
        pipeline_services.lead_transition(lead=moved, to_stage=Stage.SQL, at=friday)
        pipeline_services.activity_create(
            tenant=tenant_a, lead=before, type="call", occurred_at=tokyo(2026, 11, 13, 17, 0)
        )
    # and tenant B's untouched MQL of the same time (its own SLA)
    make_version(tenant_b, sla={"speedToLeadHours": 1})
    _mql(tenant_b, None, friday, "B")

    def run(*at: int) -> tuple[int, int]:
        result = speed_to_lead_reminders_run(tenant=tenant_a, now=tokyo(*at))
        return result.reminded, result.escalated

    # when the beat runs over the weekend: 30 business minutes used, nothing is due
    assert run(2026, 11, 14, 12) == (0, 0)
    # at Monday 09:30 exactly 1 business hour has passed: still within the SLA
    assert run(2026, 11, 16, 9, 30) == (0, 0)
    # then past it the owner is reminded of the untouched ones, once
    assert run(2026, 11, 16, 9, 31) == (2, 0)
    assert run(2026, 11, 16, 9, 36) == (0, 0)
    # and past twice the SLA the managers, once
    assert run(2026, 11, 16, 10, 31) == (0, 2)
    assert run(2026, 11, 16, 10, 36) == (0, 0)
    with tenant_context(tenant_a):
        transitions = {
            lead.pk: lead_transitions
            for lead, lead_transitions in (
                (
                    lead,
                    list(lead.transitions.filter(to_stage=Stage.MQL).values_list("pk", flat=True)),
                )
                for lead in (late, before)
            )
        }
    keys = {
        f"{SPEED_TO_LEAD_REMINDER}:{transitions[lead.pk][0]}:{who}": recipients
        for lead in (late, before)
        for who, recipients in (("owner", [rep.pk]), ("manager", [boss.pk]))
    }
    assert dict(_sent(tenant_a)) == keys
    # and tenant B's beat reminds B's lead only (nobody owns it: webhooks only)
    assert (
        speed_to_lead_reminders_run(tenant=tenant_b, now=tokyo(2026, 11, 16, 9, 31)).reminded == 1
    )
    assert len(_sent(tenant_a)) == 4


def test_no_speed_to_lead_sla_no_reminder(tenant_a: Any) -> None:
    make_version(tenant_a, sla={"acceptHours": 8})
    _mql(tenant_a, None, tokyo(2026, 11, 13, 10), "Lead")
    result = speed_to_lead_reminders_run(tenant=tenant_a, now=tokyo(2026, 11, 20, 10))
    assert (result.reminded, result.escalated) == (0, 0)
