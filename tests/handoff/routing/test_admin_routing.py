"""The admin lists assignments, SQL handoffs and member absences of its own tenant only, in
Japanese; assignments and handoffs are read-only."""

from __future__ import annotations

from typing import Any

import pytest

from handoff.assigning import route_lead
from tenants import members
from tenants.scopes import Role
from tests.factories import UserFactory
from tests.handoff.routing.conftest import MONDAY, make_lead, make_version, sql_handoff

pytestmark = pytest.mark.django_db


def test_admin_shows_routing_rows_read_only(
    client: Any, tenant_a, tenant_b, sellers, field_team
) -> None:
    version = make_version(tenant_a, routing={"sql": {"teamId": field_team.pk}})
    route_lead(lead=make_lead(tenant_a, company="Ours"), stage="sql", version=version, at=MONDAY)
    ours = sql_handoff(tenant_a, version, at=MONDAY, owner=sellers[0], company="Ours")
    theirs = sql_handoff(tenant_b, make_version(tenant_b), at=MONDAY, company="Theirs")
    admin_user = UserFactory(username="admin-acme", is_staff=True)
    members.membership_add(tenant=tenant_a, user=admin_user, role=Role.ADMIN)
    client.force_login(admin_user)
    for path in ("assignment", "handoff"):
        listing = client.get(f"/admin/handoff/{path}/")
        assert listing.status_code == 200
        assert "Theirs" not in listing.content.decode()
        assert client.get(f"/admin/handoff/{path}/add/").status_code == 403
    assert "SQL 引き渡し" in client.get("/admin/handoff/handoff/").content.decode()
    assert client.get(f"/admin/handoff/handoff/{ours.pk}/change/").status_code == 200
    assert client.get(f"/admin/handoff/handoff/{theirs.pk}/change/").status_code in (302, 404)
    assert client.get("/admin/tenants/memberabsence/").status_code == 200
