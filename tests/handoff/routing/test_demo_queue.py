"""The demo seed of the handoff queue: a routed, agreed version and SQLs awaiting acceptance,
once (a second run adds nothing)."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff.demo_queue import demo_handoff_queue_seed
from handoff.models import Handoff, HandoffState, RuleVersion, VersionStatus
from pipeline.lifecycle import Stage
from pipeline.services import lead_transition
from tenants.context import tenant_context
from tenants.models import Membership
from tests.handoff.conftest import NOW, agreed_version, make_lead

pytestmark = pytest.mark.django_db


def test_demo_queue_seed_is_idempotent(tenant_a, marketer, seller) -> None:
    agreed_version(tenant_a, marketer, seller)
    for i in range(3):
        lead = make_lead(tenant_a, company=f"Demo {i}")
        lead_transition(lead=lead, to_stage=Stage.MQL, at=NOW - dt.timedelta(days=2))
    first = demo_handoff_queue_seed(tenant=tenant_a, now=NOW)
    second = demo_handoff_queue_seed(tenant=tenant_a, now=NOW)
    assert (first.opened, second.opened) == (3, 0)
    assert first.version.pk == second.version.pk
    with tenant_context(tenant_a):
        active = RuleVersion.objects.get(status=VersionStatus.ACTIVE)
        assert active.routing["sql"]["strategy"] == "roundRobin"
        assert active.sla["acceptHours"] == 8
        handoffs = list(Handoff.objects.select_related("owner").order_by("handed_at"))
        assert [h.state for h in handoffs] == [HandoffState.AWAITING] * 3
        assert {h.owner.role for h in handoffs} == {"field_sales"}
        assert all(h.due_at is not None for h in handoffs)
        assert Membership.objects.filter(role="field_sales").count() == 3 + 1  # + seller
