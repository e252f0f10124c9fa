"""A workspace set up and read over the API only, as the "from scratch" steps of docs/api.md say:
the create_tenant command prints a token, then GraphQL alone sets the calendar (New York, fiscal
year from October, US holidays, a closure), the team and reps, a deal stage, ingests records
and reads KPIs, a tree and a funnel. Expected values are worked out by hand below."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

from django.core.management import call_command

from kpis.snapshots import kpi_snapshots_refresh_dirty
from tenants.context import tenant_context
from tenants.models import Tenant

SETUP = """mutation {
  updateTenant(input: {name: "NY Sales"}) { errors { code field } }
}"""
TEAM = """mutation { createTeam(input: {name: "East"}) { team { id } errors { code } } }"""
MEMBER = """mutation($input: AddMemberInput!) {
  addMember(input: $input) { member { id } errors { code field } }
}"""
STAGE = """mutation {
  createDealStage(input: {name: "Proposal", winProbability: "0.35", order: 1}) {
    dealStage { order } errors { code field }
  }
  addClosure(input: {date: "2026-11-27", name: "Day after Thanksgiving"}) { errors { code } }
}"""
INGEST = """mutation($input: IngestRecordsJsonInput!) {
  ingestRecordsJson(input: $input) { rowErrors { kind index field code message } }
}"""
VALUES = """query($period: String!, $scope: ScopeInput) {
  kpiValues(period: $period, scope: $scope,
            kpis: ["calls", "connects", "connect_rate", "leads", "meeting_rate",
                   "calls_per_rep_day", "weighted_pipeline"]) {
    value { kpi { key } value numerator denominator }
  }
}"""
TREE = """{ kpiTree(period: "2026-11") { workingDays period { grain start end } } }"""
FUNNEL = """{ funnel(period: "2026-11") { groups { steps { stage count } } } }"""


def ok(graphql: Any, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    status, body = graphql(query, variables, token=token)
    assert status == 200 and "errors" not in body, body
    for payload in body["data"].values():
        assert not (isinstance(payload, dict) and payload.get("errors")), payload
    return body["data"]


def values(graphql: Any, token: str, period: str, scope: dict | None = None) -> dict[str, Any]:
    data = ok(graphql, token, VALUES, {"period": period, "scope": scope})
    return {
        point["value"]["kpi"]["key"]: (point["value"]["numerator"], point["value"]["value"])
        for point in data["kpiValues"]
    }


def test_a_new_york_workspace_set_up_and_read_over_the_api_only(db, graphql):
    # given a workspace made by the documented command, with its printed token
    out = StringIO()
    call_command(
        "create_tenant", "--slug", "nyc", "--name", "NYC", "--admin-email", "admin@nyc.example",
        "--timezone", "America/New_York", "--fiscal-year-start", "10", "--holiday-country", "US",
        "--currency", "USD", "--with-token", stdout=out,
    )  # fmt: skip
    token = re.search(r"API token:\s+(\S+)", out.getvalue()).group(1)
    # and, over GraphQL only: its name, a team, three reps, a deal stage and a closure
    ok(graphql, token, SETUP)
    east = ok(graphql, token, TEAM)["createTeam"]["team"]["id"]
    reps = {}
    for name, team in (("ann", east), ("bob", east), ("cy", None)):
        member = {"email": f"{name}@example.com", "teamId": team}
        reps[name] = ok(graphql, token, MEMBER, {"input": member})["addMember"]["member"]["id"]
    assert ok(graphql, token, STAGE)["createDealStage"]["dealStage"] == {"order": 1}
    # when a partner sends its records (New York local times, EST -05:00 after 1 November)
    leads = [
        {"externalId": "L1", "company": "Acme", "ownerEmail": "ann@example.com",
         "source": "web", "createdAt": "2026-11-02T10:00:00-05:00"},
        {"externalId": "L2", "company": "Globex", "ownerEmail": "bob@example.com",
         "source": "event", "createdAt": "2026-11-02T23:30:00-05:00"},  # 3 Nov in UTC
        {"externalId": "L3", "company": "Initech", "ownerEmail": "cy@example.com",
         "source": "web", "createdAt": "2026-10-31T23:59:59-04:00"},  # October, EDT
    ]  # fmt: skip
    calls = [  # (id, rep, lead, at, outcome)
        ("A1", "ann", "L1", "2026-11-03T09:00:00-05:00", "connected"),
        ("A2", "ann", "L1", "2026-11-30T23:30:00-05:00", "no_answer"),  # 1 Dec in UTC
        ("A3", "bob", "L2", "2026-12-01T00:00:00-05:00", "connected"),  # December
        ("A5", "cy", "L3", "2026-11-26T10:00:00-05:00", "connected"),  # Thanksgiving
    ]
    activities = [
        {"externalId": a, "repEmail": f"{rep}@example.com", "leadExternalId": lead,
         "type": "call", "occurredAt": at, "callOutcome": outcome}
        for a, rep, lead, at, outcome in calls
    ] + [{"externalId": "A4", "repEmail": "bob@example.com", "leadExternalId": "L2",
          "type": "email", "occurredAt": "2026-11-10T12:00:00-05:00",
          "emailDelivered": True, "emailOpened": True}]  # fmt: skip
    stages = [("L1", "mql", "04"), ("L1", "sql", "05"), ("L1", "meeting", "06"),
              ("L1", "opportunity", "09"), ("L2", "mql", "04")]  # fmt: skip
    batch = {
        "sourceSystem": "crm",
        "leads": leads,
        "activities": activities,
        "leadStageChanges": [
            {"leadExternalId": lead, "toStage": stage, "at": f"2026-11-{day}T10:00:00-05:00"}
            for lead, stage, day in stages
        ],
        "deals": [
            {"externalId": "D1", "leadExternalId": "L1", "amount": "1000000",
             "stageName": "Proposal", "ownerEmail": "ann@example.com", "sourcedByIs": True,
             "createdAt": "2026-11-09T12:00:00-05:00"}
        ],
    }  # fmt: skip
    assert ok(graphql, token, INGEST, {"input": batch})["ingestRecordsJson"]["rowErrors"] == []
    tenant = Tenant.objects.get(slug="nyc")
    with tenant_context(tenant):  # what the worker does after the batch commits
        kpi_snapshots_refresh_dirty(tenant=tenant)
    # then November counts New York's days: A1, A2 and Thanksgiving's A5, not December's A3
    november = values(graphql, token, "2026-11")
    assert november["calls"] == ("3", "3.0000")
    assert november["connects"] == ("2", "2.0000")
    assert november["connect_rate"][1] == "66.6667"
    assert november["leads"] == ("2", "2.0000")  # L3 is October's
    assert november["meeting_rate"][1] == "50.0000"  # 1 meeting of 2 leads
    # and November has 18 working days: 21 weekdays less Veterans Day, Thanksgiving and the
    # closure; three reps were active (bob by e-mail), so 3 calls ÷ (3 x 18)
    assert november["calls_per_rep_day"][1] == "0.0556"
    tree = ok(graphql, token, TREE)["kpiTree"]
    assert tree == {
        "workingDays": 18,
        "period": {"grain": "MONTH", "start": "2026-11-01", "end": "2026-12-01"},
    }
    # and the open deal weighs 35 % at the month's end
    assert november["weighted_pipeline"][1] == "350000.0000"
    # and the team and rep scopes follow the reps added over the API
    assert values(graphql, token, "2026-11", {"type": "TEAM", "id": east})["calls"][0] == "2"
    assert values(graphql, token, "2026-11", {"type": "REP", "id": reps["cy"]})["calls"][0] == "1"
    # and the fiscal quarter from October holds all four calls
    assert values(graphql, token, "FY2026-Q1")["calls"][0] == "4"
    # and the funnel counts November's entries
    (group,) = ok(graphql, token, FUNNEL)["funnel"]["groups"]
    assert [(s["stage"], s["count"]) for s in group["steps"]] == [
        ("LEAD", 2), ("MQL", 2), ("SQL", 1), ("MEETING", 1), ("OPPORTUNITY", 1), ("WON", 0),
    ]  # fmt: skip
