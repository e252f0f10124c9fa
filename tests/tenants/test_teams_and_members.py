"""Teams and members over GraphQL: create, rename, delete, add by e-mail, change; who may do
it, bad input, and tenant isolation. A rep added this way is who partner records refer to."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from strawberry.relay import to_base64

from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty
from tenants import members, services
from tenants.context import tenant_context
from tenants.errors import ValidationFailed
from tenants.models import Membership, Team, Tenant
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory

CREATE_TEAM = """mutation($input: CreateTeamInput!) {
  createTeam(input: $input) { team { id name } errors { code field message } }
}"""
UPDATE_TEAM = """mutation($input: UpdateTeamInput!) {
  updateTeam(input: $input) { team { id name } errors { code field message } }
}"""
DELETE_TEAM = """mutation($id: ID!) {
  deleteTeam(id: $id) { deletedId errors { code field message } }
}"""
ADD_MEMBER = """mutation($input: AddMemberInput!) {
  addMember(input: $input) {
    member { id role email username displayName isActive team { name } }
    errors { code field message }
  }
}"""
UPDATE_MEMBER = """mutation($input: UpdateMemberInput!) {
  updateMember(input: $input) {
    member { id role displayName isActive team { name } }
    errors { code field message }
  }
}"""
INGEST = """mutation($input: IngestRecordsInput!) {
  ingestRecords(input: $input) {
    activities { created rejected } rowErrors { index field code message }
  }
}"""
CALLS = """query($scope: ScopeInput) {
  kpiValues(period: "2026-04-07", kpis: ["calls"], scope: $scope) { value { numerator } }
}"""


def token(tenant: Any, *scopes: str) -> str:
    return services.api_token_create(tenant=tenant, name="sfa sync", scopes=list(scopes))[1]


@pytest.fixture
def config_a(tenant_a: Any) -> str:
    return token(tenant_a, "config:write", "records:write", "records:read", "kpis:read")


@pytest.fixture
def config_b(tenant_b: Any) -> str:
    return token(tenant_b, "config:write", "records:write", "records:read", "kpis:read")


def run(graphql: Any, query: str, variables: dict[str, Any], **auth: Any) -> dict[str, Any]:
    status, body = graphql(query, variables, **auth)
    assert status == 200, body
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload


def members_of(tenant: Any) -> list[tuple[str, str, str | None]]:
    with tenant_context(tenant):
        return [
            (m.user.email, m.role, m.team.name if m.team else None)
            for m in Membership.objects.select_related("user", "team").order_by("pk")
        ]


def test_a_rep_added_by_email_is_who_partner_activities_count_for(graphql, tenant_a, config_a):
    # given a team created over the API
    team = run(graphql, CREATE_TEAM, {"input": {"name": " 東京1課 "}}, token=config_a)
    assert team["errors"] == [] and team["team"]["name"] == "東京1課"
    # when a rep is added to it by e-mail
    added = run(
        graphql,
        ADD_MEMBER,
        {
            "input": {
                "email": "Tanaka@example.com",  # the domain lower-cased, as Django stores it
                "teamId": team["team"]["id"],
                "displayName": "田中 太郎",
            }
        },
        token=config_a,
    )
    # then the rep exists as a new user without a password
    member = added["member"]
    assert added["errors"] == []
    assert {k: member[k] for k in ("role", "email", "username", "displayName", "isActive")} == {
        "role": "REP",
        "email": "Tanaka@example.com",  # the domain lower-cased, as Django stores it
        "username": "tanaka@example.com",
        "displayName": "田中 太郎",
        "isActive": True,
    }
    assert member["team"] == {"name": "東京1課"}
    user = get_user_model().objects.get(username="tanaka@example.com")
    assert not user.has_usable_password() and not user.is_staff
    # and a partner's calls by that e-mail count for the rep and the team
    ingested = run(
        graphql,
        INGEST,
        {
            "input": {
                "sourceSystem": "sfa",
                "leads": [
                    {
                        "externalId": "L1",
                        "company": "株式会社テスト",
                        "createdAt": "2026-04-01T09:00:00+09:00",
                    }
                ],
                "activities": [
                    {
                        "externalId": f"A{n}",
                        "leadExternalId": "L1",
                        "repEmail": "tanaka@example.com",
                        "type": "call",
                        "occurredAt": f"2026-04-07T1{n}:00:00+09:00",
                    }
                    for n in range(3)
                ],
            }
        },
        token=config_a,
    )
    assert ingested == {"activities": {"created": 3, "rejected": 0}, "rowErrors": []}
    with tenant_context(tenant_a):  # the refresh a worker runs after the commit
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
    for scope in ({"type": "REP", "id": member["id"]}, {"type": "TEAM", "id": team["team"]["id"]}):
        (value,) = run(graphql, CALLS, {"scope": scope}, token=config_a)
        assert value["value"]["numerator"] == "3"


def test_an_existing_user_is_added_not_created_again(graphql, tenant_a, tenant_b, config_a):
    # given a person already working in tenant B
    user = UserFactory(username="sato", email="sato@example.com")
    members.membership_add(tenant=tenant_b, user=user, role=Role.MANAGER)
    # when tenant A adds the same e-mail as a rep
    added = run(graphql, ADD_MEMBER, {"input": {"email": "SATO@example.com"}}, token=config_a)
    # then the same user has a membership in each tenant, with its own role
    assert added["member"]["username"] == "sato"
    assert get_user_model().objects.filter(email__iexact="sato@example.com").count() == 1
    assert members_of(tenant_a) == [("sato@example.com", "rep", None)]
    assert members_of(tenant_b) == [("sato@example.com", "manager", None)]


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"email": "not-an-email"}, "VALIDATION", "email"),
        ({"email": "x@example.com", "username": "bad name!"}, "VALIDATION", "username"),
        ({"email": "x@example.com", "displayName": "x" * 151}, "VALIDATION", "displayName"),
        ({"email": "x@example.com", "teamId": to_base64("Team", 999999)}, "NOT_FOUND", "teamId"),
        ({"email": "x@example.com", "teamId": to_base64("Lead", 1)}, "NOT_FOUND", "teamId"),
        ({"email": "member@example.com"}, "CONFLICT", "email"),
        ({"email": "x@example.com", "username": "member"}, "CONFLICT", "username"),
    ],
    ids=[
        "bad-email",
        "bad-username",
        "long-name",
        "unknown-team",
        "not-a-team",
        "already-member",
        "username-of-someone-else",
    ],
)
def test_bad_member_input_is_a_typed_error_and_changes_nothing(
    graphql, tenant_a, config_a, variables, code, field
):
    # given one member
    user = UserFactory(username="member", email="member@example.com")
    members.membership_add(tenant=tenant_a, user=user, role=Role.REP)
    users = get_user_model().objects.count()
    # when
    payload = run(graphql, ADD_MEMBER, {"input": variables}, token=config_a)
    # then
    assert payload["member"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert members_of(tenant_a) == [("member@example.com", "rep", None)]
    assert get_user_model().objects.count() == users


def test_team_names_are_checked(graphql, tenant_a, config_a):
    run(graphql, CREATE_TEAM, {"input": {"name": "大阪"}}, token=config_a)
    for name, code in (("  ", "VALIDATION"), ("x" * 101, "VALIDATION"), ("大阪", "CONFLICT")):
        payload = run(graphql, CREATE_TEAM, {"input": {"name": name}}, token=config_a)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, "name")]
    with tenant_context(tenant_a):
        assert list(Team.objects.values_list("name", flat=True)) == ["大阪"]


def test_rename_and_delete_a_team(graphql, tenant_a, config_a):
    # given two teams and a rep in one of them
    osaka = run(graphql, CREATE_TEAM, {"input": {"name": "大阪"}}, token=config_a)["team"]
    run(graphql, CREATE_TEAM, {"input": {"name": "名古屋"}}, token=config_a)
    run(graphql, ADD_MEMBER, {"input": {"email": "r@example.com", "teamId": osaka["id"]}},
        token=config_a)  # fmt: skip
    # when renamed to a free name, then to a taken one
    renamed = run(graphql, UPDATE_TEAM, {"input": {"id": osaka["id"], "name": "関西"}},
                  token=config_a)  # fmt: skip
    taken = run(graphql, UPDATE_TEAM, {"input": {"id": osaka["id"], "name": "名古屋"}},
                token=config_a)  # fmt: skip
    # then
    assert renamed == {"team": {"id": osaka["id"], "name": "関西"}, "errors": []}
    assert [(e["code"], e["field"]) for e in taken["errors"]] == [("CONFLICT", "name")]
    assert members_of(tenant_a) == [("r@example.com", "rep", "関西")]
    # when deleted, its rep is left without a team
    deleted = run(graphql, DELETE_TEAM, {"id": osaka["id"]}, token=config_a)
    assert deleted == {"deletedId": osaka["id"], "errors": []}
    assert members_of(tenant_a) == [("r@example.com", "rep", None)]
    with tenant_context(tenant_a):
        assert list(Team.objects.values_list("name", flat=True)) == ["名古屋"]


def test_update_member_changes_only_what_is_sent(graphql, tenant_a, config_a):
    team = run(graphql, CREATE_TEAM, {"input": {"name": "東京"}}, token=config_a)["team"]
    member = run(graphql, ADD_MEMBER, {"input": {"email": "r@example.com"}}, token=config_a)
    member_id = member["member"]["id"]
    moved = run(graphql, UPDATE_MEMBER, {"input": {"id": member_id, "teamId": team["id"]}},
                token=config_a)  # fmt: skip
    assert moved["member"] | {"id": None} == {
        "id": None, "role": "REP", "displayName": "", "isActive": True, "team": {"name": "東京"},
    }  # fmt: skip
    changed = run(
        graphql,
        UPDATE_MEMBER,
        {"input": {"id": member_id, "role": "MANAGER", "displayName": "Mgr", "isActive": False}},
        token=config_a,
    )
    assert changed["member"] | {"id": None} == {
        "id": None, "role": "MANAGER", "displayName": "Mgr", "isActive": False,
        "team": {"name": "東京"},
    }  # fmt: skip
    cleared = run(graphql, UPDATE_MEMBER, {"input": {"id": member_id, "teamId": None}},
                  token=config_a)  # fmt: skip
    assert cleared["member"]["team"] is None
    refused = run(graphql, UPDATE_MEMBER, {"input": {"id": member_id, "role": None}},
                  token=config_a)  # fmt: skip
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("VALIDATION", "role")]
    assert members_of(tenant_a) == [("r@example.com", "manager", None)]


def test_a_team_move_marks_its_days_instead_of_rebuilding_the_tenant(
    graphql, tenant_a, config_a, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr("kpis.snapshots.scheduling.kpi_rebuild_schedule", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        team = run(graphql, CREATE_TEAM, {"input": {"name": "東京"}}, token=config_a)["team"]
        member = run(graphql, ADD_MEMBER, {"input": {"email": "r@example.com"}}, token=config_a)
    assert pending(graphql, config_a) == [False]
    # (the refresh queued after commit is left out: the marked day is refreshed below)
    with django_capture_on_commit_callbacks(execute=False):
        moved = run(graphql, UPDATE_MEMBER,
                    {"input": {"id": member["member"]["id"], "teamId": team["id"],
                               "teamEffectiveFrom": "2026-04-01"}},
                    token=config_a)  # fmt: skip
    assert moved["errors"] == [] and moved["member"]["team"] == {"name": "東京"}
    # then no rebuild is asked for: the move's first day (the member has no rows) is marked,
    # so April reads as pending until that day is refreshed
    assert queued == []
    assert Tenant.objects.get(pk=tenant_a.pk).kpi_rebuild_requested_at is None
    assert pending(graphql, config_a) == [True]
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    with tenant_context(tenant):
        kpi_snapshots_refresh_dirty(tenant=tenant)
    assert pending(graphql, config_a) == [False]


def pending(graphql: Any, token: str) -> list[bool]:
    query = '{ kpiValues(period: "2026-04", kpis: ["calls"]) { value { pending } } }'
    _, body = graphql(query, token=token)
    return [point["value"]["pending"] for point in body["data"]["kpiValues"]]


def test_a_rebuild_keeps_the_mark_of_a_change_made_after_it_began(tenant_a, monkeypatch):
    # given a rebuild that began before a second change asked for another one
    asked_first = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    asked_again = asked_first + dt.timedelta(seconds=5)
    Tenant.objects.filter(pk=tenant_a.pk).update(kpi_rebuild_requested_at=asked_again)
    monkeypatch.setattr("kpis.snapshots.rebuild._rebuild_requested", lambda tenant: asked_first)
    # when it commits
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    # then the values stay pending until the second rebuild
    assert Tenant.objects.get(pk=tenant_a.pk).kpi_rebuild_requested_at == asked_again


# --- who may do it ---------------------------------------------------------------------------


def test_without_config_write_nothing_changes(graphql, tenant_a):
    reader = token(tenant_a, "records:write", "kpis:write", "kpis:read")
    for query, variables in (
        (CREATE_TEAM, {"input": {"name": "x"}}),
        (ADD_MEMBER, {"input": {"email": "r@example.com"}}),
    ):
        payload = run(graphql, query, variables, token=reader)
        assert [e["code"] for e in payload["errors"]] == ["PERMISSION_DENIED"]
    assert members_of(tenant_a) == []
    with tenant_context(tenant_a):
        assert not Team.objects.exists()


def test_only_an_admin_grants_or_changes_the_admin_role(graphql, tenant_a, admin_a, config_a):
    # a config:write token cannot make an admin, nor change one
    refused = run(graphql, ADD_MEMBER, {"input": {"email": "boss@example.com", "role": "ADMIN"}},
                  token=config_a)  # fmt: skip
    assert [e["code"] for e in refused["errors"]] == ["PERMISSION_DENIED"]
    with tenant_context(tenant_a):
        admin_id = to_base64("Membership", Membership.objects.get(user=admin_a).pk)
    demote = {"input": {"id": admin_id, "role": "REP"}}
    refused = run(graphql, UPDATE_MEMBER, demote, token=config_a)
    assert [e["code"] for e in refused["errors"]] == ["PERMISSION_DENIED"]
    # a signed-in admin can make another admin (given Django admin access)
    made = run(graphql, ADD_MEMBER, {"input": {"email": "boss@example.com", "role": "ADMIN"}},
               user=admin_a, tenant="acme")  # fmt: skip
    assert made["member"]["role"] == "ADMIN"
    assert get_user_model().objects.get(email="boss@example.com").is_staff
    # and the workspace keeps at least one active admin
    boss_id = made["member"]["id"]
    run(graphql, UPDATE_MEMBER, {"input": {"id": boss_id, "isActive": False}},
        user=admin_a, tenant="acme")  # fmt: skip
    last = run(graphql, UPDATE_MEMBER, demote, user=admin_a, tenant="acme")
    assert [(e["code"], e["field"]) for e in last["errors"]] == [("VALIDATION", "role")]
    with tenant_context(tenant_a):
        assert Membership.objects.get(user=admin_a).role == "admin"


# --- tenant isolation ------------------------------------------------------------------------


def test_tenant_b_cannot_touch_tenant_a_teams_or_members(
    graphql, tenant_a, tenant_b, config_a, config_b
):
    team = run(graphql, CREATE_TEAM, {"input": {"name": "東京"}}, token=config_a)["team"]
    member = run(graphql, ADD_MEMBER, {"input": {"email": "r@example.com", "teamId": team["id"]}},
                 token=config_a)["member"]  # fmt: skip
    attempts = (
        (UPDATE_TEAM, {"input": {"id": team["id"], "name": "盗った"}}, "id"),
        (DELETE_TEAM, {"id": team["id"]}, "id"),
        (UPDATE_MEMBER, {"input": {"id": member["id"], "role": "VIEWER"}}, "id"),
        (ADD_MEMBER, {"input": {"email": "b@example.com", "teamId": team["id"]}}, "teamId"),
    )
    for query, variables, field in attempts:
        payload = run(graphql, query, variables, token=config_b)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("NOT_FOUND", field)]
    assert members_of(tenant_a) == [("r@example.com", "rep", "東京")]
    assert members_of(tenant_b) == []
    with tenant_context(tenant_b):
        assert not Team.objects.exists()
    # and B's member list never shows A's people
    _, body = graphql("{ members { edges { node { email } } } }", token=config_b)
    assert body["data"]["members"]["edges"] == []


@pytest.mark.parametrize("count", [1, 12])
def test_members_list_query_count_does_not_grow(
    graphql, tenant_a, config_a, django_assert_max_num_queries, count
):
    team = TeamFactory(tenant=tenant_a)
    for n in range(count):
        user = UserFactory(username=f"rep{n}", email=f"rep{n}@example.com")
        members.membership_add(tenant=tenant_a, user=user, role=Role.REP, team=team)
    query = "{ members { edges { node { email username role team { name } } } } }"
    # the same bound for 1 and 12 members (PostgreSQL adds its row-level security settings)
    with django_assert_max_num_queries({"sqlite": 9, "postgresql": 15}[connection.vendor]):
        _, body = graphql(query, token=config_a)
    assert len(body["data"]["members"]["edges"]) == count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_leave_one_admin(tenant_a: Any) -> None:
    # given two admins, and a demotion of the second held open after it read the admins
    first, second = (UserFactory(username=name) for name in ("first", "second"))
    for user in (first, second):
        members.membership_add(tenant=tenant_a, user=user, role=Role.ADMIN)
    with tenant_context(tenant_a):
        a, b = Membership.objects.order_by("pk")
    results: dict[str, str] = {}
    started = threading.Event()

    def demote(target: Membership, key: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                members.member_update(membership=target, role=Role.REP)
                if hold:
                    started.set()
                    time.sleep(0.5)  # the other demotion now waits for the admins' locks
            results[key] = "demoted"
        except ValidationFailed:
            results[key] = "refused"
        finally:
            connections.close_all()

    holder = threading.Thread(target=demote, args=(b, "b", True))
    holder.start()
    assert started.wait(5)
    # when the first admin is demoted meanwhile
    other = threading.Thread(target=demote, args=(a, "a", False))
    other.start()
    holder.join(10)
    other.join(10)
    # then exactly one demotion went through: one admin is left
    assert sorted(results.values()) == ["demoted", "refused"]
    with tenant_context(tenant_a):
        assert Membership.objects.filter(role=Role.ADMIN).count() == 1


def test_a_member_made_inactive_loses_access_at_once(graphql, tenant_a, admin_a, config_a):
    # given a rep who can read the workspace
    rep = UserFactory(username="leaver", email="leaver@example.com")
    member = members.membership_add(tenant=tenant_a, user=rep, role=Role.REP)
    me = "{ me { tenant { slug } } }"
    status, body = graphql(me, user=rep, tenant="acme")
    assert status == 200 and body["data"]["me"]["tenant"] == {"slug": "acme"}
    # when the rep is made inactive over the API
    member_id = to_base64("Membership", member.pk)
    run(graphql, UPDATE_MEMBER, {"input": {"id": member_id, "isActive": False}}, token=config_a)
    # then the next request of the rep is refused, and the history stays
    status, body = graphql(me, user=rep, tenant="acme")
    assert status == 403 and body["errors"][0]["extensions"]["code"] == "NOT_A_MEMBER"
    with tenant_context(tenant_a):
        assert Membership.objects.filter(pk=member.pk, is_active=False).exists()
