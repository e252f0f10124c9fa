"""`ingestRecordsJson`: rows as JSON arrays, validated like the typed input, set-based writes.

What both doors do alike (storing a batch, idempotency conflicts, the batch limit, the scope)
is tested once over both in test_ingestion.py; here, what only the JSON door has."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from pipeline.ingestion import IngestKind, RowError, RowErrorCode, records_ingest
from pipeline.models import Activity, Deal, DealStageChange, DirtyDay, IngestionRequest, Lead
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory
from tests.pipeline.test_ingestion import INGEST, counts, full_batch, ingest, snapshot

# Every read a partner token may make of the records ingestion writes.
RECORDS = "{ leads { edges { node { company } } } activities { totalCount } deals { totalCount } }"


def ingest_json(graphql, token: str, batch: dict[str, Any], key: str | None = None) -> dict:
    return ingest(graphql, token, batch, key, door="json")


def ingest_typed(graphql, token: str, batch: dict[str, Any], key: str | None = None) -> dict:
    status, body = graphql(INGEST, {"input": batch, "key": key}, token=token)
    assert status == 200, body
    return body["data"]["ingestRecords"]


def activity(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "externalId": external_id,
        "leadExternalId": "L1",
        "type": "call",
        "occurredAt": "2025-04-03T11:00:00+09:00",
        **fields,
    }


def row_error(index: int, field: str | None, code: str, message: str) -> dict[str, Any]:
    return {"kind": "ACTIVITY", "index": index, "field": field, "code": code, "message": message}


def test_json_and_typed_inputs_store_the_same_records(
    graphql, tenant_a, tenant_b, token_a, token_b, rep_a
):
    # given: B has a member with A's rep's username and e-mail, so references resolve alike
    team = TeamFactory(tenant=tenant_b, name="IS East")
    members.membership_add(tenant=tenant_b, user=rep_a.user, role=Role.REP, team=team)

    def records(tenant: Any) -> dict[str, list]:
        ignored = {"id", "tenant_id", "lead_id", "deal_id", "owner_id", "created_owner_id",
                   "rep_id", "team_id", "stage_id", "received_at", "updated_at",
                   "created"}  # fmt: skip
        return {
            name: [{k: v for k, v in row.items() if k not in ignored} for row in rows]
            for name, rows in snapshot(tenant).items()
        }

    # when
    typed = ingest_typed(graphql, token_a, full_batch())
    json = ingest_json(graphql, token_b, full_batch())
    # then
    assert json == typed
    assert records(tenant_b) == records(tenant_a)


def test_bad_json_rows_are_reported_with_index_and_reason_and_good_rows_are_stored(
    graphql, tenant_a, token_a
):
    # given
    batch = {
        "sourceSystem": "dialer",
        "leads": [{"externalId": "L1", "company": "Acme", "createdAt": "2025-04-01T09:00:00Z"}],
        "activities": [
            activity("A1", durationSeconds=60),
            activity("A2", durationSeconds="long"),
            activity("A3", occuredAt="2025-04-03T11:00:00+09:00"),
            {**activity("A4"), "lead_external_id": "L1"},
            "not a row",
            activity("A1", type="email"),
            activity("A6", durationSeconds=2**31),
            activity("A7", callOutcome="connected\x00"),
            activity("A8", leadExternalId="NOPE", emailOpened="yes"),
            activity("A9", occurredAt="2025-04-03 11:00"),
            activity("A10", durationSeconds=1.5, type=None),
            activity("A11", callOutcome="connected"),
        ],
    }
    # when
    result = ingest_json(graphql, token_a, batch)
    # then
    assert result["rowErrors"] == [
        row_error(1, "durationSeconds", "INVALID", "Expected an integer."),
        row_error(2, "occuredAt", "UNKNOWN_FIELD", "Not a field of this kind of row."),
        row_error(3, "lead_external_id", "UNKNOWN_FIELD", "Not a field of this kind of row."),
        row_error(4, None, "INVALID", "A row must be an object."),
        row_error(4, "externalId", "REQUIRED", "This field is required."),
        row_error(4, "leadExternalId", "REQUIRED", "This field is required."),
        row_error(4, "type", "REQUIRED", "This field is required."),
        row_error(4, "occurredAt", "REQUIRED", "This field is required."),
        row_error(5, "externalId", "DUPLICATE", "Same externalId as row 0."),
        row_error(6, "durationSeconds", "OUT_OF_RANGE", "Must be at most 2147483647."),
        row_error(7, "callOutcome", "INVALID_CHOICE", "Expected one of: connected, no_answer, "
                  "voicemail, busy, wrong_number, other."),
        row_error(8, "leadExternalId", "UNKNOWN_REFERENCE", "No lead has this externalId."),
        row_error(8, "emailOpened", "INVALID", "Expected true or false."),
        row_error(9, "occurredAt", "NAIVE_DATETIME",
                  "Give the time zone offset (e.g. +09:00 or Z)."),
        row_error(10, "type", "REQUIRED", "This field is required."),
        row_error(10, "durationSeconds", "INVALID", "Expected an integer."),
    ]  # fmt: skip
    assert result["activities"] == counts(created=2, rejected=10)
    assert result["leads"] == counts(created=1)
    with tenant_context(tenant_a):
        assert list(
            Activity.objects.order_by("external_id").values_list("external_id", flat=True)
        ) == [
            "A1",
            "A11",
        ]


def test_nul_characters_and_bad_json_values_are_row_errors(graphql, tenant_a, token_a):
    # when
    result = ingest_json(
        graphql,
        token_a,
        {
            "sourceSystem": "sfa",
            "leads": [
                {"externalId": "L1", "company": "Ac\x00me", "createdAt": "2025-04-01T09:00Z"},
                {"externalId": "L2", "company": "B", "createdAt": "2025-04-01T09:00Z",
                 "attributes": {"note": "a\x00b"}},
                {"externalId": "L3", "company": "C", "createdAt": "2025-04-01T09:00Z",
                 "attributes": ["not", "an", "object"], "score": -(2**31) - 1},
                {"externalId": "L4", "company": "D", "createdAt": "2025-04-01T09:00Z",
                 "attributes": {"industry": "SaaS", "seats": 40}, "score": -5},
            ],
        },
    )  # fmt: skip
    # then
    assert [(e["index"], e["field"], e["code"], e["message"]) for e in result["rowErrors"]] == [
        (0, "company", "INVALID", "Must not contain NUL characters."),
        (1, "attributes", "INVALID", "Must not contain NUL characters."),
        (2, "attributes", "INVALID", "Expected an object."),
        (2, "score", "OUT_OF_RANGE", "Must be at least -2147483648."),
    ]
    with tenant_context(tenant_a):
        assert list(Lead.objects.values_list("external_id", "attributes", "score")) == [
            ("L4", {"industry": "SaaS", "seats": 40}, -5)
        ]


def test_changed_rows_are_updated_and_their_old_and_new_days_marked_dirty(
    graphql, tenant_a, token_a
):
    # given
    lead = {"externalId": "L1", "company": "Acme", "createdAt": "2025-04-01T09:00:00+09:00"}
    ingest_json(
        graphql,
        token_a,
        {
            "sourceSystem": "dialer",
            "leads": [lead],
            "activities": [
                activity("A1", occurredAt="2025-04-02T10:00:00+09:00"),
                activity("A2", occurredAt="2025-04-02T11:00:00+09:00"),
            ],
        },
    )
    with tenant_context(tenant_a):
        DirtyDay.objects.all().delete()
        stored_a2 = Activity.objects.values().get(external_id="A2")
    # when: A1 moves to another day, A2 is resent as is, A3 is new
    result = ingest_json(
        graphql,
        token_a,
        {
            "sourceSystem": "dialer",
            "activities": [
                activity("A1", occurredAt="2025-04-05T10:00:00+09:00", durationSeconds=30),
                activity("A2", occurredAt="2025-04-02T11:00:00+09:00"),
                activity("A3", occurredAt="2025-04-07T10:00:00+09:00"),
            ],
        },
    )
    # then
    assert result["activities"] == counts(created=1, updated=1, unchanged=1)
    with tenant_context(tenant_a):
        assert list(
            Activity.objects.order_by("external_id").values_list(
                "external_id", "occurred_at", "duration_seconds"
            )
        ) == [
            ("A1", dt.datetime(2025, 4, 5, 1, 0, tzinfo=dt.UTC), 30),
            ("A2", dt.datetime(2025, 4, 2, 2, 0, tzinfo=dt.UTC), None),
            ("A3", dt.datetime(2025, 4, 7, 1, 0, tzinfo=dt.UTC), None),
        ]
        assert Activity.objects.values().get(external_id="A2") == stored_a2
        assert list(DirtyDay.objects.order_by("day").values_list("day", flat=True)) == [
            dt.date(2025, 4, 2),
            dt.date(2025, 4, 5),
            dt.date(2025, 4, 7),
        ]


def test_idempotency_key_replays_the_first_result_whichever_mutation_retries(
    graphql, tenant_a, token_a, rep_a
):
    # given: the first attempt went through the typed mutation
    first = ingest_typed(graphql, token_a, full_batch(), key="import-1")
    stored = snapshot(tenant_a)
    # when: the partner retries with the JSON one
    retry = ingest_json(graphql, token_a, full_batch(), key="import-1")
    again = ingest_json(graphql, token_a, full_batch(), key="import-1")
    # then
    assert retry == again == {**first, "replayed": True}
    assert retry["leads"] == counts(created=2)
    assert snapshot(tenant_a) == stored
    with tenant_context(tenant_a):
        assert IngestionRequest.objects.count() == 1


def test_rows_that_are_not_a_json_array_are_a_typed_error(graphql, tenant_a, token_a):
    # when
    result = ingest_json(
        graphql,
        token_a,
        {"sourceSystem": "sfa", "leads": [], "activities": {"externalId": "A1"}},
    )
    # then
    assert result["errors"] == [
        {"code": "VALIDATION", "message": "Expected a list of rows.", "field": "activities"}
    ]
    assert snapshot(tenant_a)["activities"] == []


def test_token_of_tenant_b_cannot_write_into_or_read_tenant_a_records(
    graphql, tenant_a, tenant_b, token_a, token_b, rep_a
):
    # given: A has leads L1 and L2, activities A1 and A2 and deal D1
    ingest_json(graphql, token_a, full_batch())
    stored_a = snapshot(tenant_a)
    # when: B sends its own L1 and A1, and rows that refer to A's L2 and D1
    result = ingest_json(
        graphql,
        token_b,
        {
            "sourceSystem": "sfa",
            "leads": [{"externalId": "L1", "company": "Globex", "createdAt": "2025-05-01T00:00Z"}],
            "activities": [
                activity("A1", occurredAt="2025-05-02T00:00:00Z"),
                activity("A9", leadExternalId="L2"),
            ],
            "deals": [
                {"externalId": "D1", "leadExternalId": "L2", "amount": "1", "stageName": "受注",
                 "createdAt": "2025-05-01T00:00Z"}
            ],
            "leadStageChanges": [
                {"leadExternalId": "L2", "toStage": "mql", "at": "2025-05-01T00:00Z"}
            ],
            "dealStageChanges": [
                {"dealExternalId": "D1", "stageName": "失注", "at": "2025-05-01T00:00Z"}
            ],
        },
    )  # fmt: skip
    # then
    assert (result["leads"], result["activities"]) == (
        counts(created=1),
        counts(created=1, rejected=1),
    )
    assert [(e["kind"], e["index"], e["field"], e["code"]) for e in result["rowErrors"]] == [
        ("ACTIVITY", 1, "leadExternalId", "UNKNOWN_REFERENCE"),
        ("DEAL", 0, "leadExternalId", "UNKNOWN_REFERENCE"),
        ("LEAD_STAGE_CHANGE", 0, "leadExternalId", "UNKNOWN_REFERENCE"),
        ("DEAL_STAGE_CHANGE", 0, "dealExternalId", "UNKNOWN_REFERENCE"),
    ]  # fmt: skip
    assert snapshot(tenant_a) == stored_a
    with tenant_context(tenant_b):
        assert list(Activity.objects.values_list("external_id", "lead__company")) == [
            ("A1", "Globex")
        ]
    _, body = graphql(RECORDS, token=token_b)
    assert body["data"] == {
        "leads": {"edges": [{"node": {"company": "Globex"}}]},
        "activities": {"totalCount": 1},
        "deals": {"totalCount": 0},
    }


def _batch_of(size: int) -> dict[str, Any]:
    """`size` rows of every kind that refers to others: leads, activities, deals, histories."""
    at = "2025-04-01T10:00:00+09:00"
    return {
        "sourceSystem": "sfa",
        "leads": [
            {"externalId": f"L{i}", "company": f"C{i}", "ownerUsername": "rita",
             "teamName": "IS East", "createdAt": at}
            for i in range(size)
        ],
        "activities": [
            activity(f"A{i}", leadExternalId=f"L{i}", repEmail=None, repUsername="rita")
            for i in range(size)
        ],
        "deals": [
            {"externalId": f"D{i}", "leadExternalId": f"L{i}", "amount": "100", "stageName": "提案",
             "ownerUsername": "rita", "createdAt": at}
            for i in range(size)
        ],
        "leadStageChanges": [
            {"leadExternalId": f"L{i}", "toStage": "mql", "at": "2025-04-02T10:00:00+09:00"}
            for i in range(size)
        ],
        "dealStageChanges": [
            {"dealExternalId": f"D{i}", "stageName": "受注", "at": "2025-04-20T10:00:00+09:00"}
            for i in range(size)
        ],
    }  # fmt: skip


# Queries of one batch of every kind, whatever its size: the token and tenant scope, the
# ingestion lock, one query per kind of reference, per kind the classification and its
# writes, the team history of the transitions' owners (one read for the batch), the dirty
# days, and savepoints. COPY into the staging tables on PostgreSQL is not a Django query and
# not counted.
QUERY_BUDGET = 41


@pytest.mark.postgres
def test_query_count_of_a_batch_does_not_grow_with_its_rows(
    graphql, tenant_a, token_a, rep_a, settings, django_assert_max_num_queries
):
    # given: the token was used once already (its last use is written once a minute)
    settings.INGEST_MAX_BATCH_ROWS = 5_000
    ingest_json(graphql, token_a, {"sourceSystem": "warm-up"})
    executed = []
    for size in (10, 1_000):
        # when
        with django_assert_max_num_queries(QUERY_BUDGET) as captured:
            result = ingest_json(graphql, token_a, _batch_of(size) | {"sourceSystem": f"s{size}"})
        # then
        assert result["rowErrors"] == []
        assert result["leads"] == result["activities"] == result["deals"] == counts(created=size)
        executed.append(len(captured))
    assert executed[0] == executed[1]


def test_query_count_of_an_activity_batch_does_not_grow_with_its_rows(
    graphql, tenant_a, token_a, rep_a, django_assert_max_num_queries
):
    # given: the leads, sent first
    batch = _batch_of(1_000)
    ingest_json(graphql, token_a, {"sourceSystem": "sfa", "leads": batch["leads"]})
    executed = []
    for size, first in ((10, 0), (1_000, 10)):
        activities = [
            activity(f"A{i}", leadExternalId=f"L{i % 1_000}", repUsername="rita")
            for i in range(first, first + size)
        ]
        # when
        with django_assert_max_num_queries(20) as captured:
            result = ingest_json(
                graphql, token_a, {"sourceSystem": "sfa", "activities": activities}
            )
        # then
        assert result["activities"] == counts(created=size)
        executed.append(len(captured))
    assert executed[0] == executed[1]


def test_a_stored_deal_sent_with_its_history_keeps_the_stage_the_history_gives(
    graphql, tenant_a, token_a, rep_a
):
    # given: D1 was won through its history
    ingest_json(graphql, token_a, full_batch())
    batch = full_batch()
    batch["deals"][0] |= {"amount": "1500000.00", "stageName": "提案"}
    # when: the deal row changes its amount and names another stage, history sent along
    result = ingest_json(graphql, token_a, batch)
    # then: the amount is updated; stage and closing still follow the history
    assert result["deals"] == counts(updated=1)
    assert result["dealStageChanges"] == counts(unchanged=1)
    with tenant_context(tenant_a):
        deal = Deal.objects.select_related("stage").get()
        assert (deal.amount, deal.stage.name, deal.closed_at) == (
            Decimal("1500000.00"),
            "受注",
            dt.datetime(2025, 4, 20, 6, 0, tzinfo=dt.UTC),
        )
        assert DealStageChange.objects.count() == 1


def test_service_rows_in_snake_case_refuse_unknown_keys(tenant_a):
    # given: a CSV-like batch (snake_case keys) with a misspelt column
    batch = {
        "source_system": "csv",
        "leads": [
            {"external_id": "L1", "company": "Acme", "created_at": "2025-04-01T09:00Z"},
            {"external_id": "L2", "company": "Beta", "created_at": "2025-04-01T09:00Z",
             "employee_cnt": 40},
        ],
    }  # fmt: skip
    # when
    with tenant_context(tenant_a):
        result = records_ingest(tenant=tenant_a, batch=batch, actor_label="csv")
    # then
    assert result.row_errors == [
        RowError(
            IngestKind.LEAD,
            1,
            "employeeCnt",
            RowErrorCode.UNKNOWN_FIELD,
            "Not a field of this kind of row.",
        )
    ]
    with tenant_context(tenant_a):
        assert list(Lead.objects.values_list("external_id", flat=True)) == ["L1"]
