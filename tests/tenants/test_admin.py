"""Django admin: a tenant's admin sees and edits only their tenant; a superuser works in one
tenant at a time, any tenant, chosen with the tenant switcher."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tenants import members, services
from tenants.context import tenant_context
from tenants.models import ApiToken, Membership, Team
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


def test_superuser_sees_no_tenant_rows_until_choosing_a_tenant(client, teams):
    # given a superuser who is a member of no tenant
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when they list teams without choosing a tenant
    content = client.get("/admin/tenants/team/").content.decode()
    # then no tenant's rows are shown, but every workspace is listed to choose from
    assert "Tokyo IS" not in content
    assert "NY IS" not in content
    workspaces = client.get("/admin/tenants/tenant/").content.decode()
    assert "acme" in workspaces and "globex" in workspaces


def test_superuser_switches_to_any_tenant_and_sees_only_it(client, teams):
    # given a superuser who is a member of no tenant
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when they switch to each tenant in turn
    switched = client.post("/tenant/switch/", {"slug": "globex"})
    globex = client.get("/admin/tenants/team/").content.decode()
    client.post("/tenant/switch/", {"slug": "acme"})
    acme = client.get("/admin/tenants/team/").content.decode()
    # then each list shows that tenant's rows only
    assert switched.status_code == 302
    assert ("NY IS" in globex, "Tokyo IS" in globex) == (True, False)
    assert ("Tokyo IS" in acme, "NY IS" in acme) == (True, False)


def test_superuser_edits_rows_of_the_chosen_tenant_only(client, teams):
    # given a superuser working in acme
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    client.post("/tenant/switch/", {"slug": "acme"})
    # when they add a team and try to change globex's team
    added = client.post("/admin/tenants/team/add/", {"name": "Osaka IS"})
    refused = client.post(f"/admin/tenants/team/{teams[1].pk}/change/", {"name": "hacked"})
    # then the team lands in acme and globex's team is unchanged
    assert (added.status_code, refused.status_code) == (302, 302)
    with tenant_context(teams[0].tenant):
        assert sorted(Team.objects.values_list("name", flat=True)) == ["Osaka IS", "Tokyo IS"]
    with tenant_context(teams[1].tenant):
        assert list(Team.objects.values_list("name", flat=True)) == ["NY IS"]


def test_superuser_deletes_an_account_with_rows_in_several_tenants(
    client, tenant_a, tenant_b, admin_a
):
    # given an account that is a member of both tenants and created a token in each
    members.membership_add(tenant=tenant_b, user=admin_a, role="rep")
    for tenant in (tenant_a, tenant_b):
        services.api_token_create(
            tenant=tenant, name="sfa", scopes=["records:read"], created_by=admin_a
        )
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when a superuser deletes the account in admin
    response = client.post(f"/admin/auth/user/{admin_a.pk}/delete/", {"post": "yes"})
    # then the account and its memberships are gone, and the tokens stay, without creator
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=admin_a.pk).exists()
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            assert not Membership.objects.filter(user_id=admin_a.pk).exists()
            assert list(ApiToken.objects.values_list("created_by_id", "name")) == [(None, "sfa")]


def _member_form(member, **changes):
    """The admin change form of a member as posted, with its read-only team history."""
    spans = list(member.team_spans.order_by("valid_from"))
    data = {
        "user": member.user_id,
        "role": member.role,
        "team": member.team_id or "",
        "display_name": member.display_name,
        "is_active": "on",
        "team_spans-TOTAL_FORMS": len(spans),
        "team_spans-INITIAL_FORMS": len(spans),
        "team_spans-MIN_NUM_FORMS": 0,
        "team_spans-MAX_NUM_FORMS": 1000,
    }
    for index, span in enumerate(spans):
        data[f"team_spans-{index}-id"] = span.pk
        data[f"team_spans-{index}-member"] = member.pk
    data.update(changes)
    return data


def test_admin_records_a_team_move_from_its_effective_day(client, admin_a, tenant_a):
    import datetime as dt

    from tenants import team_history
    from tenants.models import SINCE_ALWAYS

    # given a rep of Tokyo IS and another team
    tokyo, osaka = (TeamFactory(tenant=tenant_a, name=n) for n in ("Tokyo IS", "Osaka IS"))
    rep = members.membership_add(tenant=tenant_a, user=UserFactory(), role="rep", team=tokyo)
    client.force_login(admin_a)
    url = f"/admin/tenants/membership/{rep.pk}/change/"
    with tenant_context(tenant_a):
        future = (team_history.tenant_today(tenant_a) + dt.timedelta(days=1)).isoformat()
        refused = client.post(url, _member_form(rep, team=osaka.pk, team_effective_from=future))
        # when the team is changed with a day in the future, the form says why
        assert refused.status_code == 200
        assert "after today" in refused.content.decode()
        # when it is changed with a day in the past
        moved = client.post(url, _member_form(rep, team=osaka.pk, team_effective_from="2026-03-16"))
    # then the move is recorded from that day and the member is in Osaka now
    assert moved.status_code == 302
    assert [(s.team_id, s.valid_from, s.valid_until) for s in team_history.team_spans(rep)] == [
        (tokyo.pk, SINCE_ALWAYS, dt.date(2026, 3, 16)),
        (osaka.pk, dt.date(2026, 3, 16), None),
    ]
    with tenant_context(tenant_a):
        assert Membership.objects.get(pk=rep.pk).team_id == osaka.pk


def test_superuser_deletes_a_workspace_with_everything_it_owns(client, tenant_a, tenant_b, teams):
    from decimal import Decimal

    from pipeline import services as pipeline_services
    from pipeline.models import Deal, DealStage, Lead

    # given a workspace with a team, a member, a lead and a deal (in a stage)
    rep = members.membership_add(tenant=tenant_a, user=UserFactory(), role="rep", team=teams[0])
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="Example KK", owner=rep)
        pipeline_services.deal_create(tenant=tenant_a, lead=lead, amount=Decimal("500"))
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when a superuser confirms its deletion in admin (the page counts what goes)
    page = client.get(f"/admin/tenants/tenant/{tenant_a.pk}/delete/").content.decode()
    response = client.post(f"/admin/tenants/tenant/{tenant_a.pk}/delete/", {"post": "yes"})
    # then it is gone with its rows, and the other workspace keeps its own
    assert "Leads: 1" in page and "Deals: 1" in page and "Teams: 1" in page
    assert "Example KK" not in page  # counted, not listed row by row
    assert response.status_code == 302
    assert not type(tenant_a).objects.filter(pk=tenant_a.pk).exists()
    with tenant_context(tenant_a):
        for model in (Team, Membership, Lead, Deal, DealStage):
            assert not model.objects.exists(), model
    with tenant_context(tenant_b):
        assert list(Team.objects.values_list("name", flat=True)) == ["NY IS"]
        assert DealStage.objects.exists()
