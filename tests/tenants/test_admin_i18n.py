"""The admin in the tenant's language and time zone, names instead of ids, and the pipeline
records read-only, paginated without N+1, and scoped to the admin's tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kpis.models import KpiSnapshot
from pipeline.models import Activity, Deal, DealStageChange, Lead, StageTransition
from tenants import members
from tenants.context import tenant_context
from tenants.models import Tenant
from tenants.scopes import Role
from tests.factories import TeamFactory, TenantFactory, UserFactory
from tests.pipeline.factories import ActivityFactory, DealFactory, LeadFactory

AT = dt.datetime(2026, 4, 1, 1, 5, tzinfo=dt.UTC)  # 10:05 in Tokyo, 21:05 the day before in NY


@pytest.fixture
def tokyo(db: None) -> Tenant:
    return TenantFactory(slug="tokyo", name="東京商事", timezone="Asia/Tokyo")


@pytest.fixture
def newyork(db: None) -> Tenant:
    tenant = TenantFactory(slug="ny", name="NY Inc", timezone="America/New_York")
    Tenant.objects.filter(pk=tenant.pk).update(language=Tenant.Language.EN)
    tenant.refresh_from_db()
    return tenant


def _admin_of(tenant: Tenant, username: str) -> Any:
    user = UserFactory(username=username, is_staff=True)
    members.membership_add(tenant=tenant, user=user, role=Role.ADMIN)
    return user


def _rep(tenant: Tenant, username: str, display_name: str, team: Any = None) -> Any:
    membership = members.membership_add(
        tenant=tenant, user=UserFactory(username=username), role=Role.REP, team=team
    )
    with tenant_context(tenant):
        membership.display_name = display_name
        membership.save(update_fields=["display_name"])
    return membership


def test_japanese_tenant_admin_sees_japanese_labels_and_tokyo_times(client: Any, tokyo: Tenant):
    # given a Tokyo tenant (Japanese by default) with one call at 01:05 UTC
    assert tokyo.language == "ja"
    rep = _rep(tokyo, "yamada", "山田 太郎")
    activity = ActivityFactory(
        tenant=tokyo, rep=rep, occurred_at=AT, lead=LeadFactory(tenant=tokyo, company="北斗工業")
    )
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    # when the admin opens the activities list and the activity's page
    listing = client.get("/admin/pipeline/activity/")
    page = client.get(f"/admin/pipeline/activity/{activity.pk}/change/")
    # then labels are Japanese (ours and Django's) and times are Tokyo's
    assert (listing.status_code, page.status_code) == (200, 200)
    body = listing.content.decode()
    assert listing["Content-Language"] == "ja"
    assert "実施日時" in body  # occurred at
    assert "架電結果" in body  # call outcome
    assert "検索" in body  # Django's own catalog: "Search"
    assert "2026年4月1日10:05" in body
    assert "1:05" not in body
    assert "山田 太郎" in body  # the rep by name
    detail = page.content.decode()
    assert "2026年4月1日10:05" in detail and "種別" in detail and "架電" in detail


def test_english_tenant_admin_sees_english_and_new_york_times(client: Any, newyork: Tenant):
    # given an English tenant in New York with one call at 01:05 UTC
    ActivityFactory(tenant=newyork, occurred_at=AT)
    client.force_login(_admin_of(newyork, "admin-ny"))
    # when its admin lists activities
    response = client.get("/admin/pipeline/activity/")
    # then the page is in English, the time in New York's (EDT, UTC-4)
    body = response.content.decode()
    assert response["Content-Language"] == "en"
    assert "Occurred at" in body and "実施日時" not in body
    assert "March 31, 2026, 9:05 p.m." in body


def test_pipeline_records_are_read_only(client: Any, tokyo: Tenant):
    # given a lead and a deal of the tenant
    deal = DealFactory(tenant=tokyo, name="大型案件", lead=LeadFactory(tenant=tokyo, company="A社"))
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    lead_id = deal.lead_id
    # when the admin tries to add, change and delete through the admin
    responses = [
        client.post("/admin/pipeline/lead/add/", {"company": "B社"}),
        client.post(f"/admin/pipeline/lead/{lead_id}/change/", {"company": "hacked"}),
        client.post(f"/admin/pipeline/lead/{lead_id}/delete/", {"post": "yes"}),
        client.post(f"/admin/pipeline/deal/{deal.pk}/delete/", {"post": "yes"}),
        client.post(
            "/admin/pipeline/lead/",
            {"action": "delete_selected", "_selected_action": [lead_id], "post": "yes"},
        ),
    ]
    # then every write is refused and nothing changed; the records can still be viewed
    assert [r.status_code for r in responses[:4]] == [403, 403, 403, 403]
    with tenant_context(tokyo):
        assert list(Lead.objects.values_list("company", flat=True)) == ["A社"]
        assert Deal.objects.count() == 1
    assert client.get(f"/admin/pipeline/lead/{lead_id}/change/").status_code == 200
    for model in ("lead", "activity", "deal", "dealstage", "stagetransition", "dealstagechange"):
        listing = client.get(f"/admin/pipeline/{model}/")
        assert listing.status_code == 200, model
        assert f"/admin/pipeline/{model}/add/" not in listing.content.decode()


def test_snapshot_scope_shows_names_not_ids(client: Any, tokyo: Tenant):
    # given snapshots of a rep, a team, a source and the whole tenant
    team = TeamFactory(tenant=tokyo, name="東日本チーム")
    rep = _rep(tokyo, "sato", "佐藤 花子", team=team)
    with tenant_context(tokyo):
        for scope_type, key in (("rep", str(rep.pk)), ("team", str(team.pk)), ("source", "web")):
            KpiSnapshot.objects.create(
                tenant=tokyo,
                grain="day",
                period_start=dt.date(2026, 4, 1),
                period_end=dt.date(2026, 4, 1),
                scope_type=scope_type,
                scope_key=key,
                calls=3,
            )
        KpiSnapshot.objects.create(
            tenant=tokyo,
            grain="day",
            period_start=dt.date(2026, 4, 1),
            period_end=dt.date(2026, 4, 1),
            scope_type="rep",
            scope_key="999999",
        )
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    # when the admin lists snapshots
    body = client.get("/admin/kpis/kpisnapshot/").content.decode()
    # then scopes are named
    assert "佐藤 花子" in body
    assert "東日本チーム" in body
    assert ">web<" in body
    assert "#999999 (削除済み)" in body
    assert f">{rep.pk}<" not in body


def test_changelists_do_not_query_per_row(client: Any, tokyo: Tenant):
    # given 50 activities, 50 deals with stage changes and 50 transitions, by named reps
    reps = [_rep(tokyo, f"rep{i}", f"担当 {i}") for i in range(5)]
    with tenant_context(tokyo):
        for i in range(50):
            lead = LeadFactory(tenant=tokyo, owner=reps[i % 5])
            ActivityFactory(tenant=tokyo, lead=lead, rep=reps[i % 5])
            deal = DealFactory(tenant=tokyo, lead=lead, owner=reps[i % 5])
            DealStageChange.objects.create(tenant=tokyo, deal=deal, stage=deal.stage, at=AT)
            StageTransition.objects.create(
                tenant=tokyo, lead=lead, from_stage="lead", to_stage="mql", at=AT, owner=reps[0]
            )
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    pages = ["lead", "activity", "deal", "dealstagechange", "stagetransition"]
    client.get("/admin/pipeline/lead/")  # warm the session and the content types
    for model in pages:
        # when a changelist of 50 rows is shown
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/admin/pipeline/{model}/")
        # then the queries do not grow with the rows
        assert response.status_code == 200
        rows = response.content.decode().split("<tbody>")[1].split("</tbody>")[0]
        assert rows.count("<tr") == 50, model
        assert len(queries) <= 24, (model, len(queries))


def test_admin_of_one_tenant_never_sees_anothers_records(client: Any, tokyo: Tenant, newyork):
    # given a lead, activity and deal in each tenant
    mine = DealFactory(tenant=tokyo, lead=LeadFactory(tenant=tokyo, company="東京の会社"))
    theirs = DealFactory(tenant=newyork, lead=LeadFactory(tenant=newyork, company="NY Corp"))
    their_activity = ActivityFactory(tenant=newyork, lead=theirs.lead)
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    # when Tokyo's admin lists and opens records
    listing = client.get("/admin/pipeline/lead/?q=Corp").content.decode()
    all_leads = client.get("/admin/pipeline/lead/").content.decode()
    opened = [
        client.get(f"/admin/pipeline/lead/{theirs.lead_id}/change/").status_code,
        client.get(f"/admin/pipeline/deal/{theirs.pk}/change/").status_code,
        client.get(f"/admin/pipeline/activity/{their_activity.pk}/change/").status_code,
    ]
    # then only Tokyo's rows exist for them: the others' ids act as missing
    assert "NY Corp" not in listing and "NY Corp" not in all_leads
    assert "東京の会社" in all_leads
    assert opened == [302, 302, 302]
    assert client.get(f"/admin/pipeline/deal/{mine.pk}/change/").status_code == 200
    with tenant_context(newyork):
        assert Activity.objects.count() == 1


def test_time_zone_is_chosen_from_a_list_and_validated(client: Any, tokyo: Tenant):
    # given the tenant's admin on the workspace page
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    url = f"/admin/tenants/tenant/{tokyo.pk}/change/"
    page = client.get(url).content.decode()
    data = {
        "name": "東京商事",
        "timezone": "Mars/Olympus",
        "language": "ja",
        "currency": "JPY",
        "fiscal_year_start_month": "4",
        "holiday_country": "JP",
    }
    # when they post a zone that does not exist, then one that does
    refused = client.post(url, data)
    accepted = client.post(url, {**data, "timezone": "Europe/London"})
    # then the page offered a select of zones, the unknown zone changed nothing
    assert '<select name="timezone"' in page and '<option value="Asia/Tokyo" selected>' in page
    assert refused.status_code == 200 and "Mars/Olympus" not in Tenant.objects.values_list(
        "timezone", flat=True
    )
    assert accepted.status_code == 302
    tokyo.refresh_from_db()
    assert tokyo.timezone == "Europe/London"


def test_token_scopes_shown_as_labels(client: Any, tokyo: Tenant):
    # given a token with two scopes
    from tenants import services

    services.api_token_create(tenant=tokyo, name="dialer", scopes=["records:write", "kpis:read"])
    client.force_login(_admin_of(tokyo, "admin-tokyo"))
    # when the tokens are listed
    body = client.get("/admin/tenants/apitoken/").content.decode()
    # then the scopes are named in Japanese
    assert "KPIの参照, レコードの送信" in body
    assert "records:write" not in body
