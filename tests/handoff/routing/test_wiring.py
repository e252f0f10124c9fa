"""Routing and handoffs wired into qualification: evaluation routes new MQLs, handoffToSql
routes the SQL and opens its handoff with the SLA's due time."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff.models import Assignment, Handoff, HandoffState
from handoff.qualification import handoff_evaluate, handoff_to_sql
from handoff.routing import routing_validate
from handoff.sla_rules import sla_validate
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.handoff.conftest import NOW, agreed_version, clicks, make_lead
from tests.handoff.routing.conftest import add_member

pytestmark = pytest.mark.django_db


def _configure(version, **parts) -> None:
    with tenant_context(version.tenant_id):
        for name, value in parts.items():
            setattr(version, name, value)
        version.save(update_fields=list(parts))


def test_evaluation_routes_new_mqls(tenant_a, marketer, seller) -> None:
    from tests.factories import TeamFactory

    inside = TeamFactory(tenant=tenant_a, name="IS")
    reps = [add_member(tenant_a, f"rep{i}", Role.REP, inside) for i in range(2)]
    version = agreed_version(tenant_a, marketer, seller)
    _configure(version, routing=routing_validate({"mql": {"teamId": inside.pk}}))
    leads = [make_lead(tenant_a, employee_count=100, company=f"L{i}") for i in range(2)]
    for lead in leads:
        clicks(lead, dt.timedelta(days=1), dt.timedelta(days=2))
    # when the evaluation moves both to mql
    with tenant_context(tenant_a):
        result = handoff_evaluate(tenant=tenant_a, now=NOW)
    # then each went to the next rep of the rotation, with the version recorded
    assert sorted(result.moved) == sorted(lead.pk for lead in leads)
    with tenant_context(tenant_a):
        assignments = list(Assignment.objects.order_by("lead_id"))
        assert [(a.stage, a.member_id, a.version_id) for a in assignments] == [
            ("mql", reps[0].pk, version.pk),
            ("mql", reps[1].pk, version.pk),
        ]
        for lead, rep in zip(leads, reps, strict=True):
            lead.refresh_from_db()
            assert lead.owner_id == rep.pk


def test_handoff_to_sql_routes_and_opens_the_handoff(tenant_a, marketer, seller) -> None:
    from tests.factories import TeamFactory

    field = TeamFactory(tenant=tenant_a, name="Field")
    closer = add_member(tenant_a, "closer", Role.FIELD_SALES, field)
    version = agreed_version(tenant_a, marketer, seller, sql={})
    _configure(
        version,
        routing=routing_validate({"sql": {"teamId": field.pk}}),
        sla=sla_validate({"acceptHours": 4}),
    )
    lead = make_lead(tenant_a, stage="mql")
    # when handed over on Wednesday 2026-05-20 at 10:00 Tokyo
    with tenant_context(tenant_a):
        handoff_to_sql(tenant=tenant_a, lead=lead, actor=seller, info={}, now=NOW)
        # then the closer owns the lead and has 4 business hours to accept
        lead.refresh_from_db()
        assert lead.owner_id == closer.pk
        handoff = Handoff.objects.get()
        assert (handoff.owner_id, handoff.state, handoff.sla_hours) == (
            closer.pk,
            HandoffState.AWAITING,
            4,
        )
        assert handoff.due_at == NOW + dt.timedelta(hours=4)
        assert Assignment.objects.get().stage == "sql"


def test_without_routing_the_owner_stays_and_the_handoff_has_no_due_time(
    tenant_a, marketer, seller
) -> None:
    version = agreed_version(tenant_a, marketer, seller, sql={})
    lead = make_lead(tenant_a, stage="mql", owner=seller)
    with tenant_context(tenant_a):
        handoff_to_sql(tenant=tenant_a, lead=lead, actor=seller, info={}, now=NOW)
        handoff = Handoff.objects.get()
        assert (handoff.owner_id, handoff.due_at, handoff.version_id) == (
            seller.pk,
            None,
            version.pk,
        )
        assert not Assignment.objects.exists()
