"""GraphQL: the handoff queue (SLA time left, filters, pages, query counts), accepting and
returning, the routing simulation and member absences; another tenant sees and changes
nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from strawberry import relay

from handoff.models import Handoff, HandoffState
from pipeline.lifecycle import Stage
from pipeline.models import Activity
from tenants.context import tenant_context
from tenants.models import MemberAbsence
from tenants.scopes import Role
from tests.handoff.routing.conftest import (
    MONDAY,
    add_member,
    make_lead,
    make_version,
    sql_handoff,
)

pytestmark = pytest.mark.django_db
# request plumbing (session, user, tenant, membership; on PostgreSQL the tenant setting) and
# three of the queue's own: page, count, closures
QUEUE_BUDGET = 15

QUEUE = """
query ($ownerId: ID, $teamId: ID, $first: Int) {
  handoffQueue(ownerId: $ownerId, teamId: $teamId, first: $first) {
    totalCount
    items { id company state owner { name } dueAt slaHours businessMinutesLeft breached
            allowedReturnReasons }
  }
}
"""
ACCEPT = """
mutation ($id: ID!) {
  handoffAccept(id: $id) { handoff { state acceptedAt } errors { code field message } }
}
"""
RETURN = """
mutation ($input: HandoffReturnInput!) {
  handoffReturn(input: $input) { handoff { state returnReason } errors { code field message } }
}
"""


def gid(type_name: str, pk: int) -> str:
    return relay.to_base64(type_name, pk)


@pytest.fixture
def queue(tenant_a, sellers, field_team) -> list[Handoff]:
    """Three awaiting handoffs over two owners, and one accepted."""
    fs1, fs2, _ = sellers
    version = make_version(tenant_a)
    handoffs = [
        sql_handoff(tenant_a, version, at=MONDAY, owner=fs1, company="Early"),
        sql_handoff(tenant_a, version, at=MONDAY + dt.timedelta(hours=2), owner=fs2, company="Mid"),
        sql_handoff(
            tenant_a, version, at=MONDAY + dt.timedelta(hours=4), owner=fs1, company="Late"
        ),
    ]
    done = sql_handoff(tenant_a, version, at=MONDAY, owner=fs1, company="Done")
    with tenant_context(tenant_a):
        Handoff.objects.filter(pk=done.pk).update(state=HandoffState.ACCEPTED)
    return handoffs


def test_queue_lists_awaiting_soonest_due_first(
    graphql, admin_a, queue, django_assert_max_num_queries, monkeypatch
) -> None:
    monkeypatch.setattr("handoff.queue.timezone.now", lambda: MONDAY + dt.timedelta(hours=6))
    graphql("{ me { username } }", user=admin_a, tenant="acme")  # sign in first
    # request plumbing (session, user, tenant, membership) + page, count, closures
    with django_assert_max_num_queries(QUEUE_BUDGET):
        _, body = graphql(QUEUE, tenant="acme")
    page = body["data"]["handoffQueue"]
    assert page["totalCount"] == 3
    assert [i["company"] for i in page["items"]] == ["Early", "Mid", "Late"]
    first = page["items"][0]
    # 8 business hours from Monday 10:00, 6 spent by 16:00
    assert (first["slaHours"], first["businessMinutesLeft"], first["breached"]) == (8, 120, False)
    assert first["allowedReturnReasons"] == ["noBudget", "badTiming", "notDecisionMaker"]


def test_queue_query_count_does_not_grow_with_the_page(
    graphql, admin_a, tenant_a, sellers, django_assert_max_num_queries
) -> None:
    version = make_version(tenant_a)
    for i in range(15):
        sql_handoff(tenant_a, version, at=MONDAY, owner=sellers[i % 3], company=f"C{i}")
    graphql("{ me { username } }", user=admin_a, tenant="acme")
    with django_assert_max_num_queries(QUEUE_BUDGET):
        _, body = graphql(QUEUE, {"first": 15}, tenant="acme")
    assert len(body["data"]["handoffQueue"]["items"]) == 15


def test_queue_filters_by_owner_and_team(graphql, admin_a, queue, sellers, field_team) -> None:
    fs1 = sellers[0]
    _, body = graphql(QUEUE, {"ownerId": gid("Membership", fs1.pk)}, user=admin_a, tenant="acme")
    assert [i["company"] for i in body["data"]["handoffQueue"]["items"]] == ["Early", "Late"]
    _, body = graphql(QUEUE, {"teamId": gid("Team", field_team.pk)}, user=admin_a, tenant="acme")
    assert body["data"]["handoffQueue"]["totalCount"] == 3


@pytest.fixture
def handoff_token_b(tenant_b) -> str:
    from tenants import services

    _, secret = services.api_token_create(
        tenant=tenant_b, name="sfa", scopes=["handoff:read", "handoff:write"]
    )
    return secret


def test_queue_of_another_tenant_is_empty_and_its_ids_unknown(
    graphql, handoff_token_b, queue, sellers
) -> None:
    token_b = handoff_token_b
    _, body = graphql(QUEUE, token=token_b)
    assert body["data"]["handoffQueue"] == {"totalCount": 0, "items": []}
    # A's member id through B's token is not found
    _, body = graphql(QUEUE, {"ownerId": gid("Membership", sellers[0].pk)}, token=token_b)
    assert body["data"] is None
    assert "Member not found." in body["errors"][0]["message"]


def test_accept_and_return_over_graphql(graphql, tenant_a, queue, sellers) -> None:
    fs1 = sellers[0]
    early, _, late = queue
    _, body = graphql(ACCEPT, {"id": gid("Handoff", early.pk)}, user=fs1.user, tenant="acme")
    assert body["data"]["handoffAccept"]["errors"] == []
    assert body["data"]["handoffAccept"]["handoff"]["state"] == "ACCEPTED"
    # a reason outside the version's list is refused with the allowed ones
    bad = {"id": gid("Handoff", late.pk), "reason": "tooBusy"}
    _, body = graphql(RETURN, {"input": bad}, user=fs1.user, tenant="acme")
    (error,) = body["data"]["handoffReturn"]["errors"]
    assert (error["code"], error["field"]) == ("VALIDATION", "reason")
    assert "noBudget, badTiming, notDecisionMaker" in error["message"]
    good = {"id": gid("Handoff", late.pk), "reason": "badTiming", "note": "after April"}
    _, body = graphql(RETURN, {"input": good}, user=fs1.user, tenant="acme")
    assert body["data"]["handoffReturn"]["handoff"] == {
        "state": "RETURNED",
        "returnReason": "badTiming",
    }
    with tenant_context(tenant_a):
        late.lead.refresh_from_db()
        assert late.lead.stage == Stage.RECYCLED


def test_another_tenant_cannot_accept_or_return(graphql, tenant_a, handoff_token_b, queue) -> None:
    secret = handoff_token_b
    early = queue[0]
    _, body = graphql(ACCEPT, {"id": gid("Handoff", early.pk)}, token=secret)
    (error,) = body["data"]["handoffAccept"]["errors"]
    assert (error["code"], error["field"]) == ("NOT_FOUND", "id")
    ret = {"id": gid("Handoff", early.pk), "reason": "noBudget"}
    _, body = graphql(RETURN, {"input": ret}, token=secret)
    assert body["data"]["handoffReturn"]["errors"][0]["code"] == "NOT_FOUND"
    with tenant_context(tenant_a):
        early.refresh_from_db()
        assert early.state == HandoffState.AWAITING


def test_a_read_only_caller_cannot_accept(graphql, token_a, queue) -> None:
    from tenants import services

    _, secret = services.api_token_create(
        tenant=queue[0].tenant, name="ro", scopes=["handoff:read", "records:write"]
    )
    _, body = graphql(ACCEPT, {"id": gid("Handoff", queue[0].pk)}, token=secret)
    assert body["data"]["handoffAccept"]["errors"][0]["code"] == "PERMISSION_DENIED"


SIMULATE = """
query ($versionId: ID!, $weeks: Int!) {
  routingSimulation(versionId: $versionId, weeks: $weeks) {
    weeks
    stages { stage strategy leads unassigned capacityOverflows slaHours slaMet slaBreached slaOpen
             members { name assigned maxPerPeriod } }
  }
}
"""


def test_routing_simulation_replays_and_changes_nothing(
    graphql, admin_a, tenant_a, sellers, field_team, monkeypatch
) -> None:
    # given 4 MQLs last week, one touched within the hour, and 3 SQLs
    from pipeline.services import lead_transition

    monkeypatch.setattr("handoff.simulation.timezone.now", lambda: MONDAY + dt.timedelta(days=7))
    for i in range(4):
        lead = make_lead(tenant_a, company=f"M{i}")
        at = MONDAY + dt.timedelta(hours=i)
        lead_transition(lead=lead, to_stage=Stage.MQL, at=at)
        if i == 0:
            with tenant_context(tenant_a):
                Activity.objects.create(
                    tenant=tenant_a, lead=lead, type=Activity.Type.CALL,
                    occurred_at=at + dt.timedelta(minutes=30),
                )  # fmt: skip
        if i < 3:
            lead_transition(lead=lead, to_stage=Stage.SQL, at=at + dt.timedelta(minutes=45))
    draft = make_version(
        tenant_a,
        status="draft",
        routing={"sql": {"teamId": field_team.pk, "capacity": {"max": 1, "period": "week"}}},
    )
    # and fs3 on leave that day
    with tenant_context(tenant_a):
        MemberAbsence.objects.create(
            tenant=tenant_a, member=sellers[2], start_date=MONDAY.date(), end_date=MONDAY.date()
        )
    # when simulated
    _, body = graphql(
        SIMULATE,
        {"versionId": gid("RuleVersion", draft.pk), "weeks": 2},
        user=admin_a,
        tenant="acme",
    )
    mql, sql = body["data"]["routingSimulation"]["stages"]
    # then MQLs have no routing, their speed-to-lead SLA (1 h): 1 met, 3 breached
    assert (mql["strategy"], mql["leads"], mql["unassigned"]) == (None, 4, 4)
    assert (mql["slaMet"], mql["slaBreached"], mql["slaOpen"]) == (1, 3, 0)
    # and SQLs go to fs1, fs2, then overflow (fs3 on leave, the others at capacity)
    assert (sql["leads"], sql["unassigned"], sql["capacityOverflows"]) == (3, 1, 1)
    assert sql["members"] == [
        {"name": "fs1", "assigned": 1, "maxPerPeriod": 1},
        {"name": "fs2", "assigned": 1, "maxPerPeriod": 1},
    ]
    # and nothing was written
    with tenant_context(tenant_a):
        from handoff.models import Assignment, RotationState

        assert not Assignment.objects.exists() and not RotationState.objects.exists()


def test_simulation_of_another_tenants_version_is_not_found(
    graphql, handoff_token_b, tenant_a
) -> None:
    token_b = handoff_token_b
    draft = make_version(tenant_a, status="draft")

    _, body = graphql(
        SIMULATE, {"versionId": gid("RuleVersion", draft.pk), "weeks": 2}, token=token_b
    )
    assert body["data"] is None
    assert "not found" in body["errors"][0]["message"]


ADD_ABSENCE = """
mutation ($input: AddMemberAbsenceInput!) {
  addMemberAbsence(input: $input) { absence { id startDate endDate note member { username } }
                                    errors { code field message } }
}
"""


def test_member_absences_over_graphql(graphql, admin_a, tenant_a, tenant_b, sellers) -> None:
    fs1 = sellers[0]
    good = {
        "memberId": gid("Membership", fs1.pk),
        "startDate": "2026-11-16",
        "endDate": "2026-11-18",
        "note": "夏休み",
    }
    _, body = graphql(ADD_ABSENCE, {"input": good}, user=admin_a, tenant="acme")
    absence = body["data"]["addMemberAbsence"]["absence"]
    assert (absence["startDate"], absence["endDate"], absence["member"]["username"]) == (
        "2026-11-16", "2026-11-18", "fs1",
    )  # fmt: skip
    # bad input: ends before it starts, control characters, another tenant's member
    for bad, field in (
        (good | {"endDate": "2026-11-15"}, "endDate"),
        (good | {"note": "a\x00b"}, "note"),
        (
            good | {"memberId": gid("Membership", add_member(tenant_b, "x", Role.REP).pk)},
            "memberId",
        ),
    ):
        _, body = graphql(ADD_ABSENCE, {"input": bad}, user=admin_a, tenant="acme")
        assert body["data"]["addMemberAbsence"]["errors"][0]["field"] == field
    with tenant_context(tenant_a):
        assert MemberAbsence.objects.count() == 1
    _, body = graphql("{ memberAbsences { edges { node { note } } } }", user=admin_a, tenant="acme")
    assert body["data"]["memberAbsences"]["edges"] == [{"node": {"note": "夏休み"}}]
    # remove it again; B's token sees none and cannot remove it
    absence_id = absence["id"]
    from tenants import services

    _, secret = services.api_token_create(
        tenant=tenant_b, name="cfg", scopes=["config:write", "records:read"]
    )
    _, body = graphql("{ memberAbsences { edges { node { note } } } }", token=secret)
    assert body["data"]["memberAbsences"]["edges"] == []
    remove = "mutation ($id: ID!) { removeMemberAbsence(id: $id) { removedId errors { code } } }"
    _, body = graphql(remove, {"id": absence_id}, token=secret)
    assert body["data"]["removeMemberAbsence"]["errors"] == [{"code": "NOT_FOUND"}]
    _, body = graphql(remove, {"id": absence_id}, user=admin_a, tenant="acme")
    assert body["data"]["removeMemberAbsence"] == {"removedId": absence_id, "errors": []}
