"""Django admin: a tenant's admin sees and edits only their tenant; superusers see all."""

from __future__ import annotations

import pytest

from tenants import members
from tenants.context import tenant_context
from tenants.models import ApiToken, Team
from tests.factories import TeamFactory, UserFactory


@pytest.fixture
def teams(tenant_a, tenant_b):
    return TeamFactory(tenant=tenant_a, name="Tokyo IS"), TeamFactory(tenant=tenant_b, name="NY IS")


def test_tenant_admin_lists_only_their_tenant(client, admin_a, teams):
    client.force_login(admin_a)
    response = client.get("/admin/tenants/team/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Tokyo IS" in content
    assert "NY IS" not in content


def test_tenant_admin_cannot_open_another_tenants_row(client, admin_a, teams):
    client.force_login(admin_a)
    response = client.get(f"/admin/tenants/team/{teams[1].pk}/change/")
    # Django admin redirects a missing object to the index with a message.
    assert response.status_code == 302
    response = client.post(f"/admin/tenants/team/{teams[1].pk}/change/", {"name": "hacked"})
    assert response.status_code == 302
    with tenant_context(teams[1].tenant):
        assert Team.objects.get(pk=teams[1].pk).name == "NY IS"


def test_tenant_admin_sees_only_their_tenant_object(client, admin_a, tenant_a, tenant_b):
    client.force_login(admin_a)
    content = client.get("/admin/tenants/tenant/").content.decode()
    assert "acme" in content
    assert "globex" not in content
    assert client.get(f"/admin/tenants/tenant/{tenant_b.pk}/change/").status_code == 302


def test_tenant_admin_adds_rows_into_their_tenant(client, admin_a, tenant_a, tenant_b):
    client.force_login(admin_a)
    response = client.post("/admin/tenants/team/add/", {"name": "Osaka IS"})
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert Team.objects.filter(name="Osaka IS").count() == 1
    with tenant_context(tenant_b):
        assert not Team.objects.filter(name="Osaka IS").exists()


def test_tenant_admin_creates_a_token_and_sees_its_secret_once(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        "/admin/tenants/apitoken/add/",
        {"name": "dialer", "scopes": ["records:write"]},
        follow=True,
    )
    assert response.status_code == 200
    with tenant_context(tenant_a):
        token = ApiToken.objects.get()
    assert token.created_by == admin_a
    assert f"{token.prefix}_" in response.content.decode()


def test_rep_and_non_admin_staff_are_kept_out(client, tenant_a, teams):
    rep = UserFactory(username="rep1")
    members.membership_add(tenant=tenant_a, user=rep, role="rep")
    client.force_login(rep)
    assert client.get("/admin/tenants/team/").status_code == 302  # to the login page
    manager = UserFactory(username="mgr", is_staff=True)
    members.membership_add(tenant=tenant_a, user=manager, role="manager")
    client.force_login(manager)
    assert client.get("/admin/tenants/team/").status_code == 403


def test_superuser_sees_every_tenant(client, teams):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    content = client.get("/admin/tenants/team/").content.decode()
    assert "Tokyo IS" in content
    assert "NY IS" in content
