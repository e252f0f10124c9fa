"""The pipeline GraphQL API: lead mutations with typed errors, lists, filters and isolation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from strawberry import relay

from pipeline import services
from pipeline.lifecycle import Stage
from pipeline.models import Activity, Deal, DealStage, Lead, StageTransition
from tenants.context import tenant_context
from tests.factories import MembershipFactory, TeamFactory
from tests.pipeline.factories import AT, ActivityFactory, DealFactory, LeadFactory

HOUR = dt.timedelta(hours=1)


def gid(type_name: str, obj) -> str:
    return str(relay.GlobalID(type_name, str(obj.pk)))


def _leads(tenant):
    with tenant_context(tenant):
        return list(Lead.objects.order_by("id").values_list("company", "stage", "owner_id"))


CREATE_LEAD = """mutation($input: CreateLeadInput!) { createLead(input: $input) {
    lead { company contactName stage source createdAt owner { username } team { name } }
    errors { code field } } }"""
UPDATE_LEAD = """mutation($input: UpdateLeadInput!) { updateLead(input: $input) {
    lead { company contactName owner { username } } errors { code field } } }"""
TRANSITION_LEAD = """mutation($input: TransitionLeadInput!) { transitionLead(input: $input) {
    lead { stage transitions { fromStage toStage actorLabel reason owner { username } } }
    transition { toStage at } errors { code field } } }"""


# --- mutations ------------------------------------------------------------------------


def test_create_lead_over_graphql(graphql, tenant_a, token_a, rep_a):
    # when
    _, body = graphql(
        CREATE_LEAD,
        {
            "input": {
                "company": "Acme KK",
                "contactName": "Sato",
                "source": "web",
                "ownerId": gid("Membership", rep_a),
                "createdAt": "2025-04-01T10:00:00+09:00",
            }
        },
        token=token_a,
    )
    # then the lead is created at the lead stage, in its owner's team
    assert body["data"]["createLead"] == {
        "lead": {
            "company": "Acme KK",
            "contactName": "Sato",
            "stage": "LEAD",
            "source": "web",
            "createdAt": "2025-04-01T01:00:00+00:00",
            "owner": {"username": "rita"},
            "team": {"name": "IS East"},
        },
        "errors": [],
    }


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"company": ""}, "VALIDATION", "company"),
        ({"createdAt": "2025-04-01T10:00:00"}, "VALIDATION", "createdAt"),
        ({"ownerId": str(relay.GlobalID("Membership", "999999"))}, "NOT_FOUND", "ownerId"),
        ({"teamId": str(relay.GlobalID("Lead", "1"))}, "NOT_FOUND", "teamId"),
    ],
)
def test_invalid_create_lead_returns_typed_errors(graphql, tenant_a, token_a, extra, code, field):
    _, body = graphql(CREATE_LEAD, {"input": {"company": "x", **extra}}, token=token_a)
    assert body["data"]["createLead"] == {"lead": None, "errors": [{"code": code, "field": field}]}
    assert _leads(tenant_a) == []


def test_update_lead_changes_only_sent_fields_and_null_clears_owner(
    graphql, tenant_a, token_a, rep_a
):
    # given a lead owned by a rep
    lead = LeadFactory(tenant=tenant_a, company="Old", contact_name="Sato", owner=rep_a)
    # when the company is changed and the owner cleared
    _, body = graphql(
        UPDATE_LEAD,
        {"input": {"id": gid("Lead", lead), "company": "New", "ownerId": None}},
        token=token_a,
    )
    # then
    assert body["data"]["updateLead"] == {
        "lead": {"company": "New", "contactName": "Sato", "owner": None},
        "errors": [],
    }
    assert _leads(tenant_a) == [("New", "lead", None)]


def test_transition_lead_over_graphql_records_the_actor_and_owner(
    graphql, tenant_a, token_a, rep_a
):
    lead = LeadFactory(tenant=tenant_a, owner=rep_a)
    _, body = graphql(
        TRANSITION_LEAD,
        {
            "input": {
                "id": gid("Lead", lead),
                "toStage": "MQL",
                "at": "2025-04-01T10:00:00+09:00",
                "reason": "downloaded the white paper",
            }
        },
        token=token_a,
    )
    assert body["data"]["transitionLead"] == {
        "lead": {
            "stage": "MQL",
            "transitions": [
                {
                    "fromStage": "LEAD",
                    "toStage": "MQL",
                    "actorLabel": "token:partner",
                    "reason": "downloaded the white paper",
                    "owner": {"username": "rita"},
                }
            ],
        },
        "transition": {"toStage": "MQL", "at": "2025-04-01T01:00:00+00:00"},
        "errors": [],
    }


def test_user_transition_records_the_member_as_actor(graphql, tenant_a, admin_a):
    lead = LeadFactory(tenant=tenant_a)
    _, body = graphql(
        TRANSITION_LEAD,
        {"input": {"id": gid("Lead", lead), "toStage": "MQL"}},
        user=admin_a,
        tenant="acme",
    )
    assert body["data"]["transitionLead"]["errors"] == []
    with tenant_context(tenant_a):
        transition = StageTransition.objects.select_related("actor__user").get()
    assert (transition.actor.user.username, transition.actor_label) == ("alice", "alice")


def test_invalid_transition_over_graphql_is_typed_and_changes_nothing(graphql, tenant_a, token_a):
    lead = LeadFactory(tenant=tenant_a)
    _, body = graphql(
        TRANSITION_LEAD, {"input": {"id": gid("Lead", lead), "toStage": "WON"}}, token=token_a
    )
    assert body["data"]["transitionLead"] == {
        "lead": None,
        "transition": None,
        "errors": [{"code": "INVALID_TRANSITION", "field": "toStage"}],
    }
    assert _leads(tenant_a) == [(lead.company, "lead", None)]
    with tenant_context(tenant_a):
        assert StageTransition.objects.count() == 0


def test_create_activity_and_deal_and_move_deal_over_graphql(graphql, tenant_a, token_a, rep_a):
    # given a lead and the tenant's stages
    lead = LeadFactory(tenant=tenant_a, owner=rep_a)
    with tenant_context(tenant_a):
        won = DealStage.objects.get(is_won=True)
    # when an activity and a deal are created and the deal is won
    _, activity = graphql(
        """mutation($input: CreateActivityInput!) { createActivity(input: $input) {
            activity { type callOutcome rep { username } lead { company } } errors { code } } }""",
        {
            "input": {
                "leadId": gid("Lead", lead),
                "repId": gid("Membership", rep_a),
                "type": "CALL",
                "callOutcome": "CONNECTED",
                "occurredAt": "2025-04-01T10:00:00+09:00",
            }
        },
        token=token_a,
    )
    _, created = graphql(
        """mutation($input: CreateDealInput!) { createDeal(input: $input) {
            deal { id amount currency stage { name } owner { username } closedAt }
            errors { code field } } }""",
        {
            "input": {
                "leadId": gid("Lead", lead),
                "amount": "1500000.50",
                "createdAt": AT.isoformat(),
            }
        },
        token=token_a,
    )
    deal_id = created["data"]["createDeal"]["deal"].pop("id")
    _, moved = graphql(
        """mutation($input: MoveDealStageInput!) { moveDealStage(input: $input) {
            deal { stage { name } closedAt stageChanges { stage { name } at } }
            errors { code field } } }""",
        {
            "input": {
                "id": deal_id,
                "stageId": gid("DealStage", won),
                "at": (AT + HOUR).isoformat(),
            }
        },
        token=token_a,
    )
    # then
    assert activity["data"]["createActivity"] == {
        "activity": {
            "type": "CALL",
            "callOutcome": "CONNECTED",
            "rep": {"username": "rita"},
            "lead": {"company": lead.company},
        },
        "errors": [],
    }
    assert created["data"]["createDeal"] == {
        "deal": {
            "amount": "1500000.50",
            "currency": "JPY",
            "stage": {"name": "初回商談"},
            "owner": {"username": "rita"},
            "closedAt": None,
        },
        "errors": [],
    }
    assert moved["data"]["moveDealStage"] == {
        "deal": {
            "stage": {"name": "受注"},
            "closedAt": "2025-04-01T02:00:00+00:00",
            "stageChanges": [
                {"stage": {"name": "初回商談"}, "at": "2025-04-01T01:00:00+00:00"},
                {"stage": {"name": "受注"}, "at": "2025-04-01T02:00:00+00:00"},
            ],
        },
        "errors": [],
    }


def test_negative_deal_amount_is_a_typed_error(graphql, tenant_a, token_a):
    lead = LeadFactory(tenant=tenant_a)
    _, body = graphql(
        """mutation($input: CreateDealInput!) { createDeal(input: $input) {
            deal { id } errors { code field } } }""",
        {"input": {"leadId": gid("Lead", lead), "amount": "-1"}},
        token=token_a,
    )
    assert body["data"]["createDeal"] == {
        "deal": None,
        "errors": [{"code": "VALIDATION", "field": "amount"}],
    }
    with tenant_context(tenant_a):
        assert Deal.objects.count() == 0


# --- scopes ---------------------------------------------------------------------------


def test_read_only_token_reads_but_cannot_write(graphql, tenant_a, read_only_token_a):
    LeadFactory(tenant=tenant_a, company="Acme KK")
    _, listing = graphql("{ leads { totalCount } }", token=read_only_token_a)
    _, created = graphql(CREATE_LEAD, {"input": {"company": "x"}}, token=read_only_token_a)
    assert listing["data"]["leads"] == {"totalCount": 1}
    assert created["data"]["createLead"] == {
        "lead": None,
        "errors": [{"code": "PERMISSION_DENIED", "field": None}],
    }
    assert _leads(tenant_a) == [("Acme KK", "lead", None)]


def test_anonymous_caller_cannot_list_leads(graphql, tenant_a):
    LeadFactory(tenant=tenant_a)
    _, body = graphql("{ leads { totalCount } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --- lists and filters ----------------------------------------------------------------

LEADS = """query($filter: LeadFilter, $orderBy: LeadOrder) {
    leads(filter: $filter, orderBy: $orderBy) { totalCount edges { node { company } } } }"""


def _companies(graphql, token, variables):
    _, body = graphql(LEADS, variables, token=token)
    assert "errors" not in body, body
    leads = body["data"]["leads"]
    return leads["totalCount"], [edge["node"]["company"] for edge in leads["edges"]]


def test_lead_filters(graphql, tenant_a, token_a, rep_a, team_a):
    # given leads of several stages, owners, sources and dates
    other_team = TeamFactory(tenant=tenant_a, name="IS West")
    LeadFactory(tenant=tenant_a, company="Alpha KK", owner=rep_a, team=team_a, source="web")
    LeadFactory(
        tenant=tenant_a,
        company="Beta KK",
        contact_name="Alphonse",
        stage=Stage.MQL,
        team=other_team,
        source="event",
        created_at=AT + 24 * HOUR,
    )
    LeadFactory(tenant=tenant_a, company="Gamma", stage=Stage.MQL, created_at=AT + 48 * HOUR)
    # when / then
    assert _companies(graphql, token_a, {}) == (3, ["Gamma", "Beta KK", "Alpha KK"])
    assert _companies(graphql, token_a, {"filter": {"stage": "MQL"}}) == (2, ["Gamma", "Beta KK"])
    assert _companies(graphql, token_a, {"filter": {"ownerId": gid("Membership", rep_a)}}) == (
        1,
        ["Alpha KK"],
    )
    assert _companies(graphql, token_a, {"filter": {"teamId": gid("Team", other_team)}}) == (
        1,
        ["Beta KK"],
    )
    assert _companies(graphql, token_a, {"filter": {"source": "event"}}) == (1, ["Beta KK"])
    assert _companies(graphql, token_a, {"filter": {"q": "alph"}}) == (2, ["Beta KK", "Alpha KK"])
    window = {"from": AT.isoformat(), "to": (AT + 48 * HOUR).isoformat()}
    assert _companies(graphql, token_a, {"filter": {"createdAt": window}}) == (
        2,
        ["Beta KK", "Alpha KK"],
    )
    assert _companies(graphql, token_a, {"orderBy": {"field": "COMPANY", "direction": "ASC"}}) == (
        3,
        ["Alpha KK", "Beta KK", "Gamma"],
    )


def test_activity_and_deal_filters(graphql, tenant_a, token_a, rep_a):
    lead = LeadFactory(tenant=tenant_a, company="Alpha KK")
    ActivityFactory(tenant=tenant_a, lead=lead, rep=rep_a, type=Activity.Type.CALL)
    ActivityFactory(tenant=tenant_a, type=Activity.Type.EMAIL, occurred_at=AT + HOUR)
    with tenant_context(tenant_a):
        proposal = DealStage.objects.get(name="提案")
    DealFactory(tenant=tenant_a, lead=lead, name="Big", stage=proposal, owner=rep_a)
    DealFactory(tenant=tenant_a, name="Small", created_at=AT + HOUR)

    _, body = graphql(
        """query($rep: ID!, $lead: ID!, $stage: ID!) {
          byRep: activities(filter: {repId: $rep}) { totalCount edges { node { type } } }
          byLead: activities(filter: {leadId: $lead}) { totalCount }
          emails: activities(filter: {type: EMAIL}) { totalCount }
          late: activities(filter: {occurredAt: {from: "2025-04-01T01:30:00Z"}}) { totalCount }
          byStage: deals(filter: {stageId: $stage}) { edges { node { name } } }
          byOwner: deals(filter: {ownerId: $rep}) { totalCount }
          early: deals(filter: {createdAt: {to: "2025-04-01T01:30:00Z"}}) {
            edges { node { name } } }
          stages: dealStages { name winProbability isWon }
        }""",
        {
            "rep": gid("Membership", rep_a),
            "lead": gid("Lead", lead),
            "stage": gid("DealStage", proposal),
        },
        token=token_a,
    )
    data = body["data"]
    assert data["byRep"] == {"totalCount": 1, "edges": [{"node": {"type": "CALL"}}]}
    assert data["byLead"] == {"totalCount": 1}
    assert data["emails"] == {"totalCount": 1}
    assert data["late"] == {"totalCount": 1}
    assert data["byStage"] == {"edges": [{"node": {"name": "Big"}}]}
    assert data["byOwner"] == {"totalCount": 1}
    assert data["early"] == {"edges": [{"node": {"name": "Big"}}]}
    assert [s["name"] for s in data["stages"]][:2] == ["初回商談", "ヒアリング"]
    assert data["stages"][5] == {"name": "受注", "winProbability": "1.0000", "isWon": True}


def test_nested_lead_activities_are_a_connection(graphql, tenant_a, token_a):
    lead = LeadFactory(tenant=tenant_a)
    for hours in range(3):
        ActivityFactory(tenant=tenant_a, lead=lead, occurred_at=AT + hours * HOUR)
    _, body = graphql(
        "{ leads { edges { node { activities(first: 2) { totalCount edges { node { "
        "occurredAt } } } } } } }",
        token=token_a,
    )
    assert body["data"]["leads"]["edges"][0]["node"]["activities"] == {
        "totalCount": 3,
        "edges": [
            {"node": {"occurredAt": "2025-04-01T03:00:00+00:00"}},
            {"node": {"occurredAt": "2025-04-01T02:00:00+00:00"}},
        ],
    }


# --- tenant isolation -----------------------------------------------------------------


def test_token_of_tenant_b_cannot_read_tenant_a_leads(graphql, tenant_a, tenant_b, token_b, rep_a):
    # given tenant A's lead, with an owner, a team, an activity and a deal
    lead = LeadFactory(tenant=tenant_a, owner=rep_a, team=rep_a.team)
    ActivityFactory(tenant=tenant_a, lead=lead)
    deal = DealFactory(tenant=tenant_a, lead=lead)
    # when B lists, and guesses A's ids in filters and look-ups
    _, lists = graphql(
        """query($owner: ID!, $lead: ID!, $team: ID!) {
          leads { totalCount } activities { totalCount } deals { totalCount }
          byOwner: leads(filter: {ownerId: $owner}) { totalCount }
          byTeam: leads(filter: {teamId: $team}) { totalCount }
          byLead: activities(filter: {leadId: $lead}) { totalCount }
          dealStages { name }
        }""",
        {
            "owner": gid("Membership", rep_a),
            "lead": gid("Lead", lead),
            "team": gid("Team", rep_a.team),
        },
        token=token_b,
    )
    _, by_id = graphql(
        "query($id: ID!) { lead(id: $id) { company } }", {"id": gid("Lead", lead)}, token=token_b
    )
    _, deal_by_id = graphql(
        "query($id: ID!) { deal(id: $id) { name } }", {"id": gid("Deal", deal)}, token=token_b
    )
    # then B sees nothing of A; B's stages are its own (not A's 7 + B's 7)
    data = lists["data"]
    assert {k: v for k, v in data.items() if k != "dealStages"} == {
        "leads": {"totalCount": 0},
        "activities": {"totalCount": 0},
        "deals": {"totalCount": 0},
        "byOwner": {"totalCount": 0},
        "byTeam": {"totalCount": 0},
        "byLead": {"totalCount": 0},
    }
    assert len(data["dealStages"]) == 7
    assert by_id["data"] is None
    assert by_id["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert deal_by_id["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_token_of_tenant_b_cannot_write_tenant_a_leads(graphql, tenant_a, tenant_b, token_b, rep_a):
    # given tenant A's lead and rep, and B's own lead
    lead_a = LeadFactory(tenant=tenant_a, company="A lead")
    lead_b = LeadFactory(tenant=tenant_b, company="B lead")
    with tenant_context(tenant_a):
        stage_a = DealStage.objects.get(name="提案")
    # when B updates, transitions or references A's objects by guessed global ids
    attempts = [
        (UPDATE_LEAD, {"id": gid("Lead", lead_a), "company": "pwned"}, "updateLead", "id"),
        (TRANSITION_LEAD, {"id": gid("Lead", lead_a), "toStage": "MQL"}, "transitionLead", "id"),
        (
            UPDATE_LEAD,
            {"id": gid("Lead", lead_b), "ownerId": gid("Membership", rep_a)},
            "updateLead",
            "ownerId",
        ),
        (
            CREATE_LEAD,
            {"company": "x", "ownerId": gid("Membership", rep_a)},
            "createLead",
            "ownerId",
        ),
        (
            CREATE_LEAD,
            {"company": "x", "teamId": gid("Team", rep_a.team)},
            "createLead",
            "teamId",
        ),
        (
            "mutation($input: CreateActivityInput!) { createActivity(input: $input) "
            "{ activity { id } errors { code field } } }",
            {"leadId": gid("Lead", lead_a), "type": "CALL", "occurredAt": AT.isoformat()},
            "createActivity",
            "leadId",
        ),
        (
            "mutation($input: CreateDealInput!) { createDeal(input: $input) "
            "{ deal { id } errors { code field } } }",
            {"leadId": gid("Lead", lead_b), "amount": "1", "stageId": gid("DealStage", stage_a)},
            "createDeal",
            "stageId",
        ),
    ]
    for query, variables, name, field in attempts:
        _, body = graphql(query, {"input": variables}, token=token_b)
        # then every attempt is "not found" on the field that named A's object
        assert body["data"][name]["errors"] == [{"code": "NOT_FOUND", "field": field}], name
    # and nothing changed in either tenant
    assert _leads(tenant_a) == [("A lead", "lead", None)]
    assert _leads(tenant_b) == [("B lead", "lead", None)]
    with tenant_context(tenant_a):
        assert (StageTransition.objects.count(), Activity.objects.count()) == (0, 0)
    with tenant_context(tenant_b):
        assert (Activity.objects.count(), Deal.objects.count()) == (0, 0)


# --- query budgets --------------------------------------------------------------------

LEAD_PAGE = """query($first: Int!) { leads(first: $first) { totalCount edges { node {
    id company stage owner { displayName team { name } } team { name }
    transitions { toStage owner { displayName } }
    activities(first: 3) { totalCount edges { node { type rep { displayName } } } }
} } } }"""
ACTIVITY_PAGE = """query($first: Int!) { activities(first: $first) { totalCount edges { node {
    id type occurredAt callOutcome rep { displayName } lead { company owner { displayName } }
} } } }"""
DEAL_PAGE = """query($first: Int!) { deals(first: $first) { totalCount edges { node {
    id amount currency stage { name winProbability } owner { displayName }
    lead { company } stageChanges { stage { name } at }
} } } }"""


# Budgets per list, for any page size: token authentication, savepoints (and on PostgreSQL
# the tenant settings), then one query per table or nested list (prefetched once each).
QUERY_BUDGETS = {
    "sqlite": {"leads": 16, "activities": 14, "deals": 14},
    "postgresql": {"leads": 22, "activities": 18, "deals": 20},
}


def _budget(name: str) -> int:
    return QUERY_BUDGETS[connection.vendor][name]


@pytest.fixture
def many_records(tenant_a, rep_a):
    """60 leads of 20 owners, each with a transition, an activity and a deal."""
    reps = [rep_a, *(MembershipFactory(tenant=tenant_a, team=rep_a.team) for _ in range(19))]
    for index in range(60):
        rep = reps[index % len(reps)]
        lead = LeadFactory(tenant=tenant_a, owner=rep, team=rep_a.team)
        services.lead_transition(lead=lead, to_stage=Stage.MQL, at=AT + index * HOUR)
        ActivityFactory(tenant=tenant_a, lead=lead, rep=rep)
        services.deal_create(tenant=tenant_a, lead=lead, amount=1000, created_at=AT)


@pytest.mark.parametrize(
    ("name", "query"), [("leads", LEAD_PAGE), ("activities", ACTIVITY_PAGE), ("deals", DEAL_PAGE)]
)
@pytest.mark.parametrize("first", [5, 50])
def test_list_query_count_does_not_grow_with_page_size(
    graphql, token_a, many_records, django_assert_max_num_queries, name, query, first
):
    # when a page of 5 or 50 is read
    with django_assert_max_num_queries(_budget(name)):
        _, body = graphql(query, {"first": first}, token=token_a)
    # then the page is complete
    assert "errors" not in body, body
    connection = next(iter(body["data"].values()))
    assert (connection["totalCount"], len(connection["edges"])) == (60, first)


@pytest.mark.parametrize("first", [5, 50])
def test_member_usernames_in_a_list_do_not_grow_with_page_size(
    graphql, token_a, many_records, django_assert_max_num_queries, first
):
    with django_assert_max_num_queries(_budget("leads")):
        graphql(LEAD_PAGE.replace("displayName", "username"), {"first": first}, token=token_a)
