"""Partner ingestion: upsert and idempotency, row errors, backdated histories, limits, tenancy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from pipeline.ingestion import IngestKind, RowError, RowErrorCode, records_ingest
from pipeline.lifecycle import Stage
from pipeline.models import (
    Activity,
    Deal,
    DealStageChange,
    DirtyDay,
    IngestionRequest,
    Lead,
    StageTransition,
)
from tenants.context import tenant_context
from tenants.errors import ErrorCode, PublicError

INGEST = """
mutation Ingest($input: IngestRecordsInput!, $key: String) {
  ingestRecords(input: $input, idempotencyKey: $key) {
    leads { created updated unchanged rejected }
    activities { created updated unchanged rejected }
    deals { created updated unchanged rejected }
    leadStageChanges { created updated unchanged rejected }
    dealStageChanges { created updated unchanged rejected }
    replayed
    rowErrors { kind index field code message }
    errors { code message field }
  }
}
"""
INGEST_JSON = """
mutation Ingest($input: IngestRecordsJsonInput!, $key: String) {
  ingestRecordsJson(input: $input, idempotencyKey: $key) {
    leads { created updated unchanged rejected }
    activities { created updated unchanged rejected }
    deals { created updated unchanged rejected }
    leadStageChanges { created updated unchanged rejected }
    dealStageChanges { created updated unchanged rejected }
    replayed
    rowErrors { kind index field code message }
    errors { code message field }
  }
}
"""
LEADS = "{ leads { edges { node { company } } } }"
# The two doors into the same ingestion: typed input objects, and the rows as JSON arrays.
DOORS = pytest.mark.parametrize("door", ["typed", "json"])


def counts(created: int = 0, updated: int = 0, unchanged: int = 0, rejected: int = 0) -> dict:
    return {"created": created, "updated": updated, "unchanged": unchanged, "rejected": rejected}


def full_batch() -> dict[str, Any]:
    return {
        "sourceSystem": "sfa",
        "leads": [
            {
                "externalId": "L1",
                "company": "Acme Trading",
                "ownerEmail": "rita@example.com",
                "teamName": "IS East",
                "createdAt": "2025-04-01T10:00:00+09:00",
            },
            {"externalId": "L2", "company": "Beta KK", "createdAt": "2025-04-02T10:00:00+09:00"},
        ],
        "activities": [
            {
                "externalId": "A1",
                "leadExternalId": "L1",
                "repUsername": "rita",
                "type": "call",
                "callOutcome": "connected",
                "occurredAt": "2025-04-03T11:00:00+09:00",
                "durationSeconds": 120,
            },
            {
                "externalId": "A2",
                "leadExternalId": "L2",
                "type": "email",
                "emailOpened": True,
                "occurredAt": "2025-04-03T12:00:00+09:00",
            },
        ],
        "deals": [
            {
                "externalId": "D1",
                "leadExternalId": "L1",
                "amount": "1200000.00",
                "stageName": "初回商談",
                "createdAt": "2025-04-05T10:00:00+09:00",
            }
        ],
        "leadStageChanges": [
            {"leadExternalId": "L1", "toStage": "mql", "at": "2025-04-02T09:00:00+09:00"}
        ],
        "dealStageChanges": [
            {"dealExternalId": "D1", "stageName": "受注", "at": "2025-04-20T15:00:00+09:00"}
        ],
    }


def ingest(
    graphql, token: str, batch: dict[str, Any], key: str | None = None, *, door: str = "typed"
) -> dict:
    """One batch through `ingestRecords` (door "typed") or `ingestRecordsJson` ("json")."""
    if door == "typed":
        document, name = INGEST, "ingestRecords"
    else:
        document, name = INGEST_JSON, "ingestRecordsJson"
    status, body = graphql(document, {"input": batch, "key": key}, token=token)
    assert status == 200, body
    assert "errors" not in body, body
    return body["data"][name]


def snapshot(tenant: Any) -> dict[str, list]:
    """Everything ingestion writes, to prove that a refused or repeated batch changed nothing."""
    with tenant_context(tenant):
        return {
            "leads": list(Lead.objects.order_by("pk").values()),
            "activities": list(Activity.objects.order_by("pk").values()),
            "deals": list(Deal.objects.order_by("pk").values()),
            "transitions": list(StageTransition.objects.order_by("pk").values()),
            "deal_changes": list(DealStageChange.objects.order_by("pk").values()),
            "dirty": list(DirtyDay.objects.order_by("pk").values("day")),
        }


@DOORS
def test_batch_is_stored_and_resending_it_changes_nothing(graphql, tenant_a, token_a, rep_a, door):
    # when
    first = ingest(graphql, token_a, full_batch(), door=door)
    stored = snapshot(tenant_a)
    second = ingest(graphql, token_a, full_batch(), door=door)
    # then
    assert first == {
        "leads": counts(created=2),
        "activities": counts(created=2),
        "deals": counts(created=1),
        "leadStageChanges": counts(created=1),
        "dealStageChanges": counts(created=1),
        "replayed": False,
        "rowErrors": [],
        "errors": [],
    }
    assert second == {
        **first,
        "leads": counts(unchanged=2),
        "activities": counts(unchanged=2),
        "deals": counts(unchanged=1),
        "leadStageChanges": counts(unchanged=1),
        "dealStageChanges": counts(unchanged=1),
    }
    assert snapshot(tenant_a) == stored
    with tenant_context(tenant_a):
        lead = Lead.objects.get(external_id="L1")
        assert (lead.source_system, lead.owner_id, lead.team_id, lead.stage) == (
            "sfa",
            rep_a.pk,
            rep_a.team_id,
            Stage.MQL,
        )
        assert lead.created_at == dt.datetime(2025, 4, 1, 1, 0, tzinfo=dt.UTC)
        activity = Activity.objects.get(external_id="A1")
        assert (activity.lead_id, activity.rep_id, activity.duration_seconds) == (
            lead.pk,
            rep_a.pk,
            120,
        )
        assert list(
            Activity.objects.order_by("external_id").values_list(
                "external_id", "lead_id", "rep_id", "type", "call_outcome", "email_opened",
                "duration_seconds", "occurred_at",
            )
        ) == [
            ("A1", lead.pk, rep_a.pk, "call", "connected", False, 120,
             dt.datetime(2025, 4, 3, 2, 0, tzinfo=dt.UTC)),
            ("A2", Lead.objects.get(external_id="L2").pk, None, "email", "", True, None,
             dt.datetime(2025, 4, 3, 3, 0, tzinfo=dt.UTC)),
        ]  # fmt: skip
        transition = StageTransition.objects.get()
        assert (transition.from_stage, transition.to_stage, transition.actor_label) == (
            Stage.LEAD,
            Stage.MQL,
            "token:partner",
        )
        assert (transition.owner_id, transition.team_id) == (rep_a.pk, rep_a.team_id)
        deal = Deal.objects.select_related("stage").get()
        won_at = dt.datetime(2025, 4, 20, 6, 0, tzinfo=dt.UTC)
        assert (deal.amount, deal.currency, deal.stage.name, deal.closed_at) == (
            Decimal("1200000.00"),
            "JPY",
            "受注",
            won_at,
        )
        # Its history: the initial stage at creation is implied only without explicit changes.
        assert list(DealStageChange.objects.values_list("stage__name", "at")) == [("受注", won_at)]


def test_changed_rows_are_updated_in_place(graphql, tenant_a, token_a, rep_a):
    # given
    ingest(graphql, token_a, full_batch())
    batch = full_batch()
    batch["leads"][1]["company"] = "Beta Holdings"
    batch["activities"][0]["durationSeconds"] = 180
    # when
    result = ingest(graphql, token_a, batch)
    # then
    assert result["leads"] == counts(updated=1, unchanged=1)
    assert result["activities"] == counts(updated=1, unchanged=1)
    with tenant_context(tenant_a):
        assert Lead.objects.count() == 2
        assert Lead.objects.get(external_id="L2").company == "Beta Holdings"
        assert Activity.objects.get(external_id="A1").duration_seconds == 180


def test_bad_rows_are_reported_and_good_rows_are_stored(tenant_a):
    # given
    batch = {
        "source_system": "sfa",
        "leads": [
            {"external_id": "L1", "company": "Good", "created_at": "2025-04-01T10:00:00+09:00"},
            {"external_id": "L2", "company": "Naive", "created_at": "2025-04-01T10:00:00"},
            {"external_id": "L1", "company": "Twin", "created_at": "2025-04-01T10:00:00Z"},
            {"external_id": "L3", "company": "Garbled", "created_at": "yesterday"},
        ],
        "activities": [
            {"external_id": "A1", "lead_external_id": "L1", "type": "call",
             "occurred_at": "2025-04-02T10:00:00+09:00"},
            {"external_id": "A2", "lead_external_id": "NOPE", "type": "call",
             "occurred_at": "2025-04-02T10:00:00+09:00"},
            {"external_id": "A3", "lead_external_id": "L1", "type": "fax",
             "occurred_at": "2025-04-02T10:00:00+09:00"},
            {"external_id": "A4", "lead_external_id": "L1", "type": "call",
             "occurred_at": "2025-04-02T10:00:00+09:00", "duration_seconds": "long"},
        ],
        "deals": [
            {"external_id": "D1", "lead_external_id": "L1", "amount": "-5",
             "stage_name": "提案", "created_at": "2025-04-02T10:00:00+09:00"},
            {"external_id": "D2", "lead_external_id": "L1", "amount": "5000",
             "stage_name": "提案", "created_at": "2025-04-02T10:00:00+09:00"},
        ],
        "lead_stage_changes": [
            {"lead_external_id": "L1", "to_stage": "won", "at": "2025-04-03T10:00:00+09:00"},
        ],
    }  # fmt: skip
    # when
    with tenant_context(tenant_a):
        result = records_ingest(tenant=tenant_a, batch=batch, actor_label="test")
    # then
    lead, activity, deal, change = (
        IngestKind.LEAD,
        IngestKind.ACTIVITY,
        IngestKind.DEAL,
        IngestKind.LEAD_STAGE_CHANGE,
    )
    assert [(e.kind, e.index, e.field, e.code) for e in result.row_errors] == [
        (lead, 1, "createdAt", RowErrorCode.NAIVE_DATETIME),
        (lead, 2, "externalId", RowErrorCode.DUPLICATE),
        (lead, 3, "createdAt", RowErrorCode.INVALID_DATETIME),
        (activity, 1, "leadExternalId", RowErrorCode.UNKNOWN_REFERENCE),
        (activity, 2, "type", RowErrorCode.INVALID_CHOICE),
        (activity, 3, "durationSeconds", RowErrorCode.INVALID),
        (deal, 0, "amount", RowErrorCode.NEGATIVE),
        (change, 0, "toStage", RowErrorCode.INVALID_TRANSITION),
    ]
    assert result.row_errors[-1] == RowError(
        change,
        0,
        "toStage",
        RowErrorCode.INVALID_TRANSITION,
        "A lead cannot go from lead to won (at 2025-04-03T10:00:00+09:00).",
    )
    assert (result.counts[lead].created, result.counts[lead].rejected) == (1, 3)
    assert (result.counts[activity].created, result.counts[activity].rejected) == (1, 3)
    assert (result.counts[deal].created, result.counts[deal].rejected) == (1, 1)
    with tenant_context(tenant_a):
        assert list(Lead.objects.values_list("external_id", "company", "stage")) == [
            ("L1", "Good", Stage.LEAD)
        ]
        assert list(Activity.objects.values_list("external_id", flat=True)) == ["A1"]
        assert list(Deal.objects.values_list("external_id", "amount")) == [
            ("D2", Decimal("5000.00"))
        ]
        assert not StageTransition.objects.exists()


def test_idempotency_key_replays_the_first_result(graphql, tenant_a, token_a, rep_a):
    # given
    first = ingest(graphql, token_a, full_batch(), key="import-2025-04-01")
    stored = snapshot(tenant_a)
    # when
    retry = ingest(graphql, token_a, full_batch(), key="import-2025-04-01")
    # then
    assert retry == {**first, "replayed": True}
    assert retry["leads"] == counts(created=2)
    assert snapshot(tenant_a) == stored


@DOORS
def test_idempotency_key_reused_for_another_batch_is_a_conflict(
    graphql, tenant_a, token_a, rep_a, door
):
    # given
    ingest(graphql, token_a, full_batch(), key="k1", door=door)
    stored = snapshot(tenant_a)
    other_lead, other_activity = full_batch(), full_batch()
    other_lead["leads"][0]["company"] = "Something else"
    other_activity["activities"][0]["durationSeconds"] = 121
    for other in (other_lead, other_activity):
        # when
        result = ingest(graphql, token_a, other, key="k1", door=door)
        # then
        assert result["errors"] == [
            {
                "code": "CONFLICT",
                "message": "This idempotency key was already used for a different batch.",
                "field": "idempotencyKey",
            }
        ]
        assert (result["leads"], result["activities"]) == (None, None)
        assert snapshot(tenant_a) == stored
        with tenant_context(tenant_a):
            assert IngestionRequest.objects.count() == 1


def _at(day: int, hour: int = 9) -> str:
    return f"2024-{day // 100:02d}-{day % 100:02d}T{hour:02d}:00:00+09:00"


def _jst(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime.fromisoformat(_at(day, hour))


def test_backdated_out_of_order_history_is_stored_at_its_times_and_validated(tenant_a):
    # given: a lead and a year of SFA history, sent newest first
    lead = {"external_id": "L1", "company": "Acme", "created_at": _at(101)}
    history = [
        ("opportunity", 1101),  # skips meeting at that point in time: refused
        ("meeting", 901),
        ("sql", 501),
        ("mql", 201),
    ]
    batch = {
        "source_system": "sfa",
        "leads": [lead],
        "lead_stage_changes": [
            {"lead_external_id": "L1", "to_stage": stage, "at": _at(day)} for stage, day in history
        ],
    }
    # when
    with tenant_context(tenant_a):
        result = records_ingest(tenant=tenant_a, batch=batch, actor_label="import")
    # then
    assert [(e.index, e.code) for e in result.row_errors] == []
    with tenant_context(tenant_a):
        assert list(StageTransition.objects.values_list("from_stage", "to_stage", "at")) == [
            ("lead", "mql", _jst(201)),
            ("mql", "sql", _jst(501)),
            ("sql", "meeting", _jst(901)),
            ("meeting", "opportunity", _jst(1101)),
        ]
        assert Lead.objects.get().stage == Stage.OPPORTUNITY

    # when: more history arrives later, partly older than what is stored
    later = {
        "source_system": "sfa",
        "lead_stage_changes": [
            {"lead_external_id": "L1", "to_stage": "won", "at": _at(1201)},
            {"lead_external_id": "L1", "to_stage": "won", "at": _at(301)},  # sql missing then
            {"lead_external_id": "L1", "to_stage": "mql", "at": _at(201)},  # already stored
        ],
    }
    with tenant_context(tenant_a):
        result = records_ingest(tenant=tenant_a, batch=later, actor_label="import")
    # then
    kind = IngestKind.LEAD_STAGE_CHANGE
    assert [(e.index, e.field, e.code) for e in result.row_errors] == [
        (1, "toStage", RowErrorCode.INVALID_TRANSITION)
    ]
    assert (result.counts[kind].created, result.counts[kind].unchanged) == (1, 1)
    assert result.counts[kind].rejected == 1
    with tenant_context(tenant_a):
        assert StageTransition.objects.count() == 5
        assert StageTransition.objects.last().at == _jst(1201)
        assert Lead.objects.get().stage == Stage.WON


def test_backdated_recycle_between_stored_changes_rewrites_the_next_from_stage(tenant_a):
    # given
    with tenant_context(tenant_a):
        records_ingest(
            tenant=tenant_a,
            batch={
                "source_system": "sfa",
                "leads": [{"external_id": "L1", "company": "Acme", "created_at": _at(101)}],
                "lead_stage_changes": [
                    {"lead_external_id": "L1", "to_stage": "mql", "at": _at(201)},
                    {"lead_external_id": "L1", "to_stage": "sql", "at": _at(401)},
                ],
            },
            actor_label="import",
        )
    # when: the partner reports a recycle that happened between them
    with tenant_context(tenant_a):
        result = records_ingest(
            tenant=tenant_a,
            batch={
                "source_system": "sfa",
                "lead_stage_changes": [
                    {"lead_external_id": "L1", "to_stage": "recycled", "at": _at(301)}
                ],
            },
            actor_label="import",
        )
    # then
    assert result.row_errors == []
    with tenant_context(tenant_a):
        assert list(StageTransition.objects.values_list("from_stage", "to_stage")) == [
            ("lead", "mql"),
            ("mql", "recycled"),
            ("recycled", "sql"),
        ]
        assert Lead.objects.get().stage == Stage.SQL


@DOORS
def test_batch_over_the_limit_is_refused_whole(graphql, tenant_a, token_a, settings, door):
    # given
    settings.INGEST_MAX_BATCH_ROWS = 6
    batch = full_batch()  # 7 rows
    # when
    result = ingest(graphql, token_a, batch, door=door)
    # then
    assert result["errors"] == [
        {
            "code": "BATCH_TOO_LARGE",
            "message": "A batch may hold at most 6 rows in total; this one has 7.",
            "field": None,
        }
    ]
    assert snapshot(tenant_a) == {
        "leads": [],
        "activities": [],
        "deals": [],
        "transitions": [],
        "deal_changes": [],
        "dirty": [],
    }


@DOORS
def test_token_without_records_write_is_refused(graphql, tenant_a, read_only_token_a, door):
    result = ingest(graphql, read_only_token_a, full_batch(), door=door)
    assert result["errors"] == [
        {
            "code": "PERMISSION_DENIED",
            "message": "This needs the 'records:write' permission.",
            "field": None,
        }
    ]
    assert snapshot(tenant_a)["leads"] == []
    with tenant_context(tenant_a):
        assert not Lead.objects.exists()


def test_tenants_are_independent_and_cannot_reach_each_other(
    graphql, tenant_a, tenant_b, token_a, token_b, rep_a
):
    # given: A has leads L1 and L2
    ingest(graphql, token_a, full_batch())
    stored_a = snapshot(tenant_a)
    # when: B sends its own L1, and an activity on A's L2
    result = ingest(
        graphql,
        token_b,
        {
            "sourceSystem": "sfa",
            "leads": [
                {"externalId": "L1", "company": "Globex L1", "createdAt": "2025-05-01T00:00:00Z"}
            ],
            "activities": [
                {
                    "externalId": "A1",
                    "leadExternalId": "L2",
                    "type": "call",
                    "occurredAt": "2025-05-01T00:00:00Z",
                }
            ],
            "leadStageChanges": [
                {"leadExternalId": "L2", "toStage": "mql", "at": "2025-05-01T00:00:00Z"}
            ],
        },
    )
    # then
    assert result["leads"] == counts(created=1)
    assert result["rowErrors"] == [
        {
            "kind": "ACTIVITY",
            "index": 0,
            "field": "leadExternalId",
            "code": "UNKNOWN_REFERENCE",
            "message": "No lead has this externalId.",
        },
        {
            "kind": "LEAD_STAGE_CHANGE",
            "index": 0,
            "field": "leadExternalId",
            "code": "UNKNOWN_REFERENCE",
            "message": "No lead has this externalId.",
        },
    ]
    assert snapshot(tenant_a) == stored_a
    with tenant_context(tenant_b):
        assert list(Lead.objects.values_list("external_id", "company")) == [("L1", "Globex L1")]
    _, body = graphql(LEADS, token=token_b)
    assert body["data"]["leads"]["edges"] == [{"node": {"company": "Globex L1"}}]


def test_dirty_days_are_tenant_local_days(tenant_a):
    # given: 23:30 in Tokyo is 14:30 UTC the same day; 00:30 in Tokyo is the UTC day before
    batch = {
        "source_system": "dialer",
        "leads": [{"external_id": "L1", "company": "Acme", "created_at": "2025-03-30T12:00:00Z"}],
        "activities": [
            {"external_id": "A1", "lead_external_id": "L1", "type": "call",
             "occurred_at": "2025-03-31T23:30:00+09:00"},
            {"external_id": "A2", "lead_external_id": "L1", "type": "call",
             "occurred_at": "2025-04-01T15:30:00Z"},
        ],
    }  # fmt: skip
    # when
    with tenant_context(tenant_a):
        records_ingest(tenant=tenant_a, batch=batch, actor_label="dialer")
    # then
    with tenant_context(tenant_a):
        assert list(DirtyDay.objects.order_by("day").values_list("day", flat=True)) == [
            dt.date(2025, 3, 30),
            dt.date(2025, 3, 31),
            dt.date(2025, 4, 2),
        ]


def test_service_refuses_a_tenant_other_than_the_one_in_context(tenant_a, tenant_b):
    with tenant_context(tenant_b), pytest.raises(Exception, match="tenant_context"):
        records_ingest(tenant=tenant_a, batch={"leads": []}, actor_label="x")


def test_batch_too_large_is_a_public_error(tenant_a, settings):
    settings.INGEST_MAX_BATCH_ROWS = 1
    with tenant_context(tenant_a), pytest.raises(PublicError) as raised:
        records_ingest(tenant=tenant_a, batch={"leads": [{}], "activities": [{}]}, actor_label="x")
    assert raised.value.code == ErrorCode.BATCH_TOO_LARGE
