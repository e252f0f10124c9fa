"""The demo workspace gets an agreed, active rule set that qualifies some of its leads; the
admin shows handoff rows read-only, in the tenant's language, scoped to its tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from handoff.demo import demo_handoff_seed
from handoff.models import Approval, Qualification, RuleVersion
from pipeline.demo import seed_demo
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory

from .conftest import TOKYO, agreed_version, member

TODAY = dt.date(2026, 5, 20)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_demo_gets_an_agreed_active_version_that_qualifies_leads(tenant_a: Any) -> None:
    # given the demo workspace as `make run` builds it
    seed_demo(tenant_slug="acme", leads=400, months=3, seed=11, today=TODAY)
    now = dt.datetime(2026, 5, 20, 18, tzinfo=TOKYO)
    # when seeded twice
    first = demo_handoff_seed(tenant=tenant_a, now=now)
    second = demo_handoff_seed(tenant=tenant_a, now=now)
    # then one active version, approved by marketing and a manager, moved leads once
    with tenant_context(tenant_a):
        version = RuleVersion.objects.get(status="active")
        roles = sorted(
            Approval.objects.filter(version=version).values_list("member__role", flat=True)
        )
        assert roles == [Role.MANAGER, Role.MARKETING]
        assert Qualification.objects.filter(version=version, stage="mql").count() == first.moved
    assert first.version == second.version == version
    assert first.moved > 0
    assert second.moved == 0


def test_the_admin_lists_handoff_rows_read_only_in_japanese(
    client: Any, tenant_a: Any, tenant_b: Any
):
    # given acme's agreed version, and globex's
    agreed_version(
        tenant_a, member(tenant_a, "mika", "marketing"), member(tenant_a, "sato", "manager")
    )
    theirs = agreed_version(
        tenant_b,
        member(tenant_b, "bob", "marketing"),
        member(tenant_b, "ben", "manager"),
        name="Theirs",
    )
    admin_user = UserFactory(username="admin-acme", is_staff=True)
    members.membership_add(tenant=tenant_a, user=admin_user, role=Role.ADMIN)
    client.force_login(admin_user)
    # when / then
    for path in ("ruleset", "ruleversion", "auditentry", "qualification"):
        assert client.get(f"/admin/handoff/{path}/").status_code == 200
    listing = client.get("/admin/handoff/ruleversion/").content.decode()
    assert "引き渡しルールのバージョン" in listing
    assert "Theirs" not in listing
    assert client.get(f"/admin/handoff/ruleversion/{theirs.pk}/change/").status_code in (302, 404)
    assert client.get("/admin/handoff/ruleset/add/").status_code == 403
