"""Hostile record input: every value is bounded, every refusal a typed error, nothing else moves.

A table of cases per input path (JSON rows, typed rows through variables, single-record
mutations, CSV import). Each case asserts the exact code and field, and that the refused
request changed nothing: row counts and the tenant's KPI snapshot values are as before.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from kpis.models import KpiSnapshot
from pipeline.models import Activity, Deal, DealStageChange, DirtyDay, Lead, StageTransition
from tenants.context import tenant_context
from tests.pipeline.test_ingestion import INGEST, INGEST_JSON

pytestmark = pytest.mark.django_db(transaction=True)

LEAD = {"externalId": "L0", "company": "Base KK", "createdAt": "2025-04-01T10:00:00+09:00"}
DEAL = {
    "externalId": "D0",
    "leadExternalId": "L0",
    "stageName": "提案",
    "amount": "1000.00",
    "createdAt": "2025-04-02T10:00:00+09:00",
}
GOOD_TIME = "2025-04-03T10:00:00+09:00"
WINDOW = "Must be between 1970-01-01T00:00:00Z and one day after now."
OFFSET = "The UTC offset must be between -14:00 and +14:00."
ASCII_AMOUNT = 'Expected a decimal number in ASCII digits, e.g. "1200000.50".'
FULL_WIDTH_2026 = "\uff12\uff10\uff12\uff16-04-01T10:00:00+09:00"  # 2026 in full-width digits


def lead(**fields: Any) -> dict[str, Any]:
    return {"leadExternalId": "L0", **fields}


# (kind, row, field, code) for one bad row; each is sent with a good row of its kind.
TIME_VALUES = [
    ("0001-01-01T00:00:00+00:00", "OUT_OF_RANGE"),
    ("0001-01-01T00:00:00+01:00", "OUT_OF_RANGE"),
    ("9999-12-31T23:59:59+14:00", "OUT_OF_RANGE"),
    ("9999-12-31T23:59:59-14:00", "OUT_OF_RANGE"),
    ("1969-12-31T23:59:59Z", "OUT_OF_RANGE"),
    ("2999-01-01T00:00:00Z", "OUT_OF_RANGE"),
    ("2026-01-01T00:00:00+23:59", "OUT_OF_RANGE"),
    ("2026-01-01T24:00:00+00:00", "INVALID_DATETIME"),
    ("2016-12-31T23:59:60Z", "INVALID_DATETIME"),
    (FULL_WIDTH_2026, "INVALID_DATETIME"),
    ("2026-01-01T00:00:00." + "1" * 1_000 + "+00:00", "INVALID_DATETIME"),
    ("x" * 1_000_000, "INVALID_DATETIME"),
]
# Where each kind of row holds a timestamp: (batch key, good row without it, field).
TIME_FIELDS = [
    ("leads", {"externalId": "L9", "company": "X"}, "createdAt"),
    ("activities", {"externalId": "A9", "leadExternalId": "L0", "type": "call"}, "occurredAt"),
    ("deals", {**DEAL, "externalId": "D9", "createdAt": None}, "createdAt"),
    ("deals", {**DEAL, "externalId": "D9", "stageName": "受注"}, "closedAt"),
    ("leadStageChanges", {"leadExternalId": "L0", "toStage": "mql"}, "at"),
    ("dealStageChanges", {"dealExternalId": "D0", "stageName": "見積提示"}, "at"),
]
JSON_ONLY_TIMES = [(1_700_000_000, "INVALID_DATETIME"), (True, "INVALID_DATETIME"),
                   ([], "INVALID_DATETIME"), ({}, "INVALID_DATETIME"),
                   (1.5, "INVALID_DATETIME")]  # fmt: skip

AMOUNTS = [
    ("1e400", "OUT_OF_RANGE", "At most 14 digits before the point."),
    ("1E+400", "OUT_OF_RANGE", "At most 14 digits before the point."),
    (str(10**20), "OUT_OF_RANGE", "At most 14 digits before the point."),
    ("100000000000000", "OUT_OF_RANGE", "At most 14 digits before the point."),
    ("-0", "NEGATIVE", "Must not be negative."),
    ("-5", "NEGATIVE", "Must not be negative."),
    ("0.001", "INVALID", "At most 2 decimal places."),
    ("NaN", "INVALID", ASCII_AMOUNT),
    ("Infinity", "INVALID", ASCII_AMOUNT),
    ("-Infinity", "INVALID", ASCII_AMOUNT),
    ("sNaN", "INVALID", ASCII_AMOUNT),
    (" 100", "INVALID", ASCII_AMOUNT),
    ("1_000", "INVALID", ASCII_AMOUNT),
    ("\uff11\uff10\uff10", "INVALID", ASCII_AMOUNT),  # 100 in full-width digits
    ("9" * 100_000, "INVALID", ASCII_AMOUNT),
]
JSON_ONLY_AMOUNTS = [
    (10**20, "OUT_OF_RANGE", "At most 14 digits before the point."),
    (1.5, "INVALID", "Expected a decimal number as a string."),
    (True, "INVALID", "Expected a decimal number as a string."),
    ([1], "INVALID", "Expected a decimal number as a string."),
]
TEXTS = [
    # (batch key, bad row, field, code)
    ("leads", {**LEAD, "externalId": "L9", "company": "a\x00b"}, "company", "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "company": "\ud800"}, "company", "INVALID"),
    ("leads", {**LEAD, "externalId": "L\x00"}, "externalId", "INVALID"),
    ("leads", {**LEAD, "externalId": "L\udfff"}, "externalId", "INVALID"),
    ("leads", {**LEAD, "externalId": "L" * 201}, "externalId", "TOO_LONG"),
    ("leads", {**LEAD, "externalId": "L9", "email": "a\x00@x.jp"}, "email", "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "email": "a" * 255}, "email", "TOO_LONG"),
    ("leads", {**LEAD, "externalId": "L9", "contactName": "n" * 100_000}, "contactName",
     "TOO_LONG"),
    ("leads", {**LEAD, "externalId": "L9", "ownerEmail": "\ud800@x.jp"}, "ownerEmail",
     "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": {"a": "x" * 1_000_000}},
     "attributes", "TOO_LONG"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": {"k" * 101: 1}}, "attributes",
     "TOO_LONG"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": {"a": "\ud800"}}, "attributes",
     "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": {"a": "\x00"}}, "attributes",
     "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": {"a": [[[[[[[[[1]]]]]]]]]}},
     "attributes", "INVALID"),
    ("activities", {"externalId": "A9", "leadExternalId": "L\x00", "type": "call",
                    "occurredAt": GOOD_TIME}, "leadExternalId", "INVALID"),
    ("activities", {"externalId": "A9", "leadExternalId": "\ud800", "type": "call",
                    "occurredAt": GOOD_TIME}, "leadExternalId", "INVALID"),
    ("deals", {**DEAL, "externalId": "D9", "currency": "\uff2a\uff30\uff39"}, "currency",
     "INVALID"),
    ("deals", {**DEAL, "externalId": "D9", "name": "\x00"}, "name", "INVALID"),
    ("leadStageChanges", {"leadExternalId": "L0", "toStage": "mql", "at": GOOD_TIME,
                          "reason": "\udc80"}, "reason", "INVALID"),
    ("dealStageChanges", {"dealExternalId": "D\x00", "stageName": "提案", "at": GOOD_TIME},
     "dealExternalId", "INVALID"),
]  # fmt: skip
JSON_ONLY_ROWS = [
    ("leads", {**LEAD, "externalId": "L9", "employeeCount": 2**40}, "employeeCount",
     "OUT_OF_RANGE"),
    ("leads", {**LEAD, "externalId": "L9", "employeeCount": -1}, "employeeCount", "NEGATIVE"),
    ("leads", {**LEAD, "externalId": "L9", "employeeCount": "12"}, "employeeCount", "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "score": 1.5}, "score", "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "score": True}, "score", "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "score": -(2**31) - 1}, "score", "OUT_OF_RANGE"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": {"a": float("nan")}}, "attributes",
     "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "attributes": [1]}, "attributes", "INVALID"),
    ("leads", {**LEAD, "externalId": "L9", "c\x00mpany": "x"}, "c\ufffdmpany",
     "UNKNOWN_FIELD"),
    ("leads", [LEAD], None, "INVALID"),
    ("leads", "L0", None, "INVALID"),
    ("activities", {"externalId": "A9", "leadExternalId": "L0", "type": "call",
                    "occurredAt": GOOD_TIME, "durationSeconds": 2**31}, "durationSeconds",
     "OUT_OF_RANGE"),
]  # fmt: skip


def _seed(client: Client, token: str) -> None:
    """Tenant A's stored rows: lead L0 and deal D0 (with its implied stage change)."""
    batch = {"sourceSystem": "sfa", "leads": [LEAD], "deals": [DEAL]}
    result = _post(client, token, INGEST_JSON, {"input": batch})
    assert result["data"]["ingestRecordsJson"]["rowErrors"] == [], result


def _post(client: Client, token: str, query: str, variables: Any) -> dict[str, Any]:
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": query, "variables": variables}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content[:300]
    return response.json()


def state(tenant: Any) -> dict[str, Any]:
    """Everything a refused row must not move: row counts, dirty days, snapshot values."""
    with tenant_context(tenant):
        return {
            "counts": [
                model.objects.count()
                for model in (Lead, Activity, Deal, StageTransition, DealStageChange, DirtyDay)
            ],
            "snapshots": sorted(
                sorted((k, str(v)) for k, v in row.items() if k not in ("id", "computed_at"))
                for row in KpiSnapshot.objects.values()
            ),
        }


def _ingest(client: Client, token: str, key: str, rows: list[Any], typed: bool) -> dict:
    batch = {"sourceSystem": "sfa", key: rows}
    body = _post(client, token, INGEST if typed else INGEST_JSON, {"input": batch})
    assert "errors" not in body, body
    return body["data"]["ingestRecords" if typed else "ingestRecordsJson"]


def _good_row(key: str) -> dict[str, Any]:
    return {
        "leads": {"externalId": "LG", "company": "Good KK", "createdAt": GOOD_TIME},
        "activities": {"externalId": "AG", "leadExternalId": "L0", "type": "email",
                       "occurredAt": GOOD_TIME},
        "deals": {**DEAL, "externalId": "DG"},
        "leadStageChanges": {"leadExternalId": "L0", "toStage": "mql", "at": GOOD_TIME},
        "dealStageChanges": {"dealExternalId": "D0", "stageName": "最終交渉",
                             "at": GOOD_TIME},
    }[key]  # fmt: skip


def _assert_refused_row(
    client: Client,
    token: str,
    tenant: Any,
    key: str,
    row: Any,
    field: str | None,
    code: str,
    typed: bool = False,
) -> dict[str, Any]:
    """Send [good row, bad row]: the bad row alone is refused with (field, code)."""
    # given
    before = state(tenant)
    # when
    result = _ingest(client, token, key, [_good_row(key), row], typed)
    # then
    errors = [(e["index"], e["field"], e["code"]) for e in result["rowErrors"]]
    assert errors[0] == (1, field, code), result["rowErrors"]
    assert {index for index, _, _ in errors} == {1}
    assert result[key]["rejected"] == 1
    assert result[key]["created"] + result[key]["updated"] == 1  # the good row is stored
    return before


@pytest.fixture
def seeded(client: Client, tenant_a: Any, token_a: str, rep_a: Any) -> Any:
    _seed(client, token_a)
    return tenant_a


def _unchanged_but_good_row(before: dict[str, Any], tenant: Any, key: str) -> None:
    """After a mixed batch, the only change is the good row (and its dirty days)."""
    after = state(tenant)
    model_index = {"leads": 0, "activities": 1, "deals": 2, "leadStageChanges": 3,
                   "dealStageChanges": 4}[key]  # fmt: skip
    grew = [a - b for a, b in zip(after["counts"][:5], before["counts"][:5], strict=True)]
    expected = [0] * 5
    expected[model_index] = 1
    if key == "deals":
        expected[4] = 1  # a new deal's implied stage change
    assert grew == expected


def _assert_refused_rows(
    client: Client, token: str, tenant: Any, key: str, rows: list[Any], typed: bool
) -> list[tuple[int, str | None, str]]:
    """Send [good row, *bad rows]: returns the row errors; the good row alone is stored."""
    # given
    before = state(tenant)
    # when
    result = _ingest(client, token, key, [_good_row(key), *rows], typed)
    # then
    assert result[key]["rejected"] == len(rows)
    assert result[key]["created"] + result[key]["updated"] == 1
    _unchanged_but_good_row(before, tenant, key)
    return [(e["index"], e["field"], e["code"]) for e in result["rowErrors"]]


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize(("key", "row", "field"), TIME_FIELDS)
def test_timestamps_outside_the_window_are_row_errors(
    client, seeded, token_a, key, row, field, typed
):
    # given: one bad row per hostile value (the JSON input also takes non-strings)
    values = TIME_VALUES + ([] if typed else JSON_ONLY_TIMES)
    rows = [{**row, field: value} for value, _ in values]
    if "externalId" in row:
        rows = [{**bad, "externalId": f"X{i}"} for i, bad in enumerate(rows)]
    # when
    errors = _assert_refused_rows(client, token_a, seeded, key, rows, typed)
    # then
    assert errors == [(i, field, code) for i, (_, code) in enumerate(values, start=1)]


def test_a_time_message_says_the_window(client, seeded, token_a):
    # when
    result = _ingest(client, token_a, "activities",
                     [{"externalId": "A1", "leadExternalId": "L0", "type": "call",
                       "occurredAt": "0001-01-01T00:00:00+00:00"},
                      {"externalId": "A2", "leadExternalId": "L0", "type": "call",
                       "occurredAt": "2026-01-01T00:00:00+23:59"}], typed=False)  # fmt: skip
    # then
    assert [(e["field"], e["code"], e["message"]) for e in result["rowErrors"]] == [
        ("occurredAt", "OUT_OF_RANGE", WINDOW),
        ("occurredAt", "OUT_OF_RANGE", OFFSET),
    ]


@pytest.mark.parametrize("typed", [False, True])
def test_bad_amounts_are_row_errors(client, seeded, token_a, typed):
    # given
    amounts = AMOUNTS + ([] if typed else JSON_ONLY_AMOUNTS)
    deals = [{**DEAL, "externalId": f"D{i}", "amount": a} for i, (a, _, _) in enumerate(amounts)]
    before = state(seeded)
    # when
    result = _ingest(client, token_a, "deals", deals, typed)
    # then
    assert [(e["index"], e["field"], e["code"], e["message"]) for e in result["rowErrors"]] == [
        (i, "amount", code, message) for i, (_, code, message) in enumerate(amounts)
    ]
    assert state(seeded) == before


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_number_tokens_python_accepts_are_row_errors(client, seeded, token_a, token):
    # given: Python's json reads NaN and Infinity, and turns 1e400 into inf
    before = state(seeded)
    row = json.dumps({**DEAL, "externalId": "D9", "amount": "AMOUNT"}).replace('"AMOUNT"', token)
    variables = {"input": {"sourceSystem": "sfa", "deals": ["ROW"]}}
    body = json.dumps({"query": INGEST_JSON, "variables": variables}).replace('"ROW"', row)
    # when
    response = client.post("/graphql/", data=body, content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {token_a}")  # fmt: skip
    # then
    errors = response.json()["data"]["ingestRecordsJson"]["rowErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [("amount", "INVALID")]
    assert state(seeded) == before


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize(("key", "row", "field", "code"), TEXTS)
def test_bad_text_is_a_row_error(client, seeded, token_a, key, row, field, code, typed):
    before = _assert_refused_row(client, token_a, seeded, key, row, field, code, typed)
    _unchanged_but_good_row(before, seeded, key)


@pytest.mark.parametrize(("key", "row", "field", "code"), JSON_ONLY_ROWS)
def test_bad_json_values_are_row_errors(client, seeded, token_a, key, row, field, code):
    before = _assert_refused_row(client, token_a, seeded, key, row, field, code)
    _unchanged_but_good_row(before, seeded, key)


def test_many_unknown_keys_are_reported_briefly(client, seeded, token_a):
    row = {**LEAD, "externalId": "L9", **{f"k{i}": i for i in range(1_000)}}
    result = _ingest(client, token_a, "leads", [row], typed=False)
    assert [(e["field"], e["code"]) for e in result["rowErrors"]] == [
        *[(f"k{i}", "UNKNOWN_FIELD") for i in range(10)],
        (None, "UNKNOWN_FIELD"),
    ]
    assert result["rowErrors"][-1]["message"] == "And 990 more unknown keys."


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"input": {"sourceSystem": "s" * 51, "leads": [LEAD]}}, "sourceSystem"),
        ({"input": {"sourceSystem": "s" * 100_000, "leads": [LEAD]}}, "sourceSystem"),
        ({"input": {"sourceSystem": "s\x00", "leads": [LEAD]}}, "sourceSystem"),
        ({"input": {"sourceSystem": "\ud800", "leads": [LEAD]}}, "sourceSystem"),
        ({"input": {"sourceSystem": "sfa", "leads": [LEAD]}, "key": "k\x00"}, "idempotencyKey"),
        ({"input": {"sourceSystem": "sfa", "leads": [LEAD]}, "key": "\udfff"}, "idempotencyKey"),
        ({"input": {"sourceSystem": "sfa", "leads": [LEAD]}, "key": "k" * 201}, "idempotencyKey"),
        ({"input": {"sourceSystem": "sfa", "leads": {"0": LEAD}}}, "leads"),
    ],
)
def test_bad_batch_level_values_refuse_the_batch(client, seeded, token_a, variables, field):
    # given
    before = state(seeded)
    # when
    body = _post(client, token_a, INGEST_JSON, variables)
    # then
    payload = body["data"]["ingestRecordsJson"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("VALIDATION", field)]
    assert state(seeded) == before


def test_references_to_another_tenant_behave_as_unknown(client, seeded, token_a, token_b, rep_b):
    # given: tenant B has lead LB and deal DB, and member bert
    _post(client, token_b, INGEST_JSON, {"input": {"sourceSystem": "sfa",
          "leads": [{**LEAD, "externalId": "LB"}],
          "deals": [{**DEAL, "externalId": "DB", "leadExternalId": "LB"}]}})  # fmt: skip
    before = state(seeded)
    # when
    result = _ingest(client, token_a, "activities", [
        {"externalId": "A1", "leadExternalId": "LB", "type": "call", "occurredAt": GOOD_TIME},
        {"externalId": "A2", "leadExternalId": "L0", "type": "call", "occurredAt": GOOD_TIME,
         "repUsername": "bert"},
    ], typed=False)  # fmt: skip
    changes = _ingest(client, token_a, "dealStageChanges",
                      [{"dealExternalId": "DB", "stageName": "提案", "at": GOOD_TIME}],
                      typed=False)  # fmt: skip
    # then
    assert [(e["index"], e["field"], e["code"]) for e in result["rowErrors"]] == [
        (0, "leadExternalId", "UNKNOWN_REFERENCE"),
        (1, "repUsername", "UNKNOWN_REFERENCE"),
    ]
    assert [(e["field"], e["code"]) for e in changes["rowErrors"]] == [
        ("dealExternalId", "UNKNOWN_REFERENCE")
    ]
    assert state(seeded) == before


def test_a_mixed_batch_stores_its_good_rows_only(client, seeded, token_a):
    # given
    before = state(seeded)
    batch = {
        "sourceSystem": "sfa",
        "leads": [{**LEAD, "externalId": "L1"},
                  {**LEAD, "externalId": "L2", "createdAt": "0001-01-01T00:00:00+00:00"},
                  {**LEAD, "externalId": "L1", "company": "Dup"}],
        "activities": [{"externalId": "A1", "leadExternalId": "L1", "type": "call",
                        "occurredAt": GOOD_TIME},
                       {"externalId": "A2", "leadExternalId": "L2", "type": "call",
                        "occurredAt": GOOD_TIME}],
        "deals": [{**DEAL, "externalId": "D1", "leadExternalId": "L1"},
                  {**DEAL, "externalId": "D2", "amount": "1e400"}],
    }  # fmt: skip
    # when
    result = _post(client, token_a, INGEST_JSON, {"input": batch})["data"]["ingestRecordsJson"]
    # then
    assert [(e["kind"], e["index"], e["field"], e["code"]) for e in result["rowErrors"]] == [
        ("LEAD", 1, "createdAt", "OUT_OF_RANGE"),
        ("LEAD", 2, "externalId", "DUPLICATE"),
        ("ACTIVITY", 1, "leadExternalId", "UNKNOWN_REFERENCE"),
        ("DEAL", 1, "amount", "OUT_OF_RANGE"),
    ]
    after = state(seeded)
    grew = [a - b for a, b in zip(after["counts"][:5], before["counts"][:5], strict=True)]
    assert grew == [1, 1, 1, 0, 1]
    with tenant_context(seeded):
        assert sorted(Lead.objects.values_list("external_id", flat=True)) == ["L0", "L1"]


# --- single-record mutations ---------------------------------------------------------------

CREATE_ACTIVITY = """mutation($i: CreateActivityInput!) {
  createActivity(input: $i) { activity { id } errors { code field message } } }"""
CREATE_LEAD = """mutation($i: CreateLeadInput!) {
  createLead(input: $i) { lead { id } errors { code field message } } }"""
CREATE_DEAL = """mutation($i: CreateDealInput!) {
  createDeal(input: $i) { deal { id } errors { code field message } } }"""
TRANSITION = """mutation($i: TransitionLeadInput!) {
  transitionLead(input: $i) { lead { id } errors { code field message } } }"""
MOVE = """mutation($i: MoveDealStageInput!) {
  moveDealStage(input: $i) { deal { id } errors { code field message } } }"""
UPDATE_LEAD = """mutation($i: UpdateLeadInput!) {
  updateLead(input: $i) { lead { id } errors { code field message } } }"""


def _ids(client: Client, token: str) -> dict[str, str]:
    data = _post(client, token, "{ leads { edges { node { id } } } deals { edges { node { id } } }"
                 " dealStages { id name } }", {})["data"]  # fmt: skip
    return {
        "lead": data["leads"]["edges"][0]["node"]["id"],
        "deal": data["deals"]["edges"][0]["node"]["id"],
        "stage": next(s["id"] for s in data["dealStages"] if s["name"] == "見積提示"),
    }


SINGLE_TIMES = [
    ("0001-01-01T00:00:00+00:00", WINDOW),
    ("0001-01-01T00:00:00+01:00", WINDOW),
    ("9999-12-31T23:59:59-14:00", WINDOW),
    ("2999-01-01T00:00:00Z", WINDOW),
    ("2026-01-01T00:00:00+23:59", OFFSET),
]


@pytest.mark.parametrize(("value", "message"), SINGLE_TIMES)
@pytest.mark.parametrize(
    ("mutation", "name", "make", "field"),
    [
        (CREATE_LEAD, "createLead", lambda ids, t: {"company": "X", "createdAt": t}, "createdAt"),
        (UPDATE_LEAD, "updateLead", lambda ids, t: {"id": ids["lead"], "createdAt": t},
         "createdAt"),
        (TRANSITION, "transitionLead",
         lambda ids, t: {"id": ids["lead"], "toStage": "MQL", "at": t}, "at"),
        (CREATE_ACTIVITY, "createActivity",
         lambda ids, t: {"leadId": ids["lead"], "type": "CALL", "occurredAt": t}, "occurredAt"),
        (CREATE_DEAL, "createDeal",
         lambda ids, t: {"leadId": ids["lead"], "amount": "1", "createdAt": t}, "createdAt"),
        (MOVE, "moveDealStage",
         lambda ids, t: {"id": ids["deal"], "stageId": ids["stage"], "at": t}, "at"),
    ],
)  # fmt: skip
def test_single_record_mutations_refuse_times_outside_the_window(
    client, seeded, token_a, mutation, name, make, field, value, message
):
    # given
    before = state(seeded)
    # when
    body = _post(client, token_a, mutation, {"i": make(_ids(client, token_a), value)})
    # then
    assert body["data"][name]["errors"] == [
        {"code": "OUT_OF_RANGE", "field": field, "message": message}
    ]
    assert state(seeded) == before


@pytest.mark.parametrize(
    ("mutation", "name", "make", "code", "field"),
    [
        (CREATE_DEAL, "createDeal", lambda ids: {"leadId": ids["lead"], "amount": "1e400"},
         "OUT_OF_RANGE", "amount"),
        (CREATE_DEAL, "createDeal", lambda ids: {"leadId": ids["lead"], "amount": "NaN"},
         "VALIDATION", "amount"),
        (CREATE_DEAL, "createDeal", lambda ids: {"leadId": ids["lead"], "amount": "-0"},
         "VALIDATION", "amount"),
        (CREATE_DEAL, "createDeal",
         lambda ids: {"leadId": ids["lead"], "amount": "1", "name": "\x00"}, "VALIDATION",
         "name"),
        (CREATE_LEAD, "createLead", lambda ids: {"company": "a\x00"}, "VALIDATION", "company"),
        (CREATE_LEAD, "createLead", lambda ids: {"company": "a", "externalId": "\ud800"},
         "VALIDATION", "externalId"),
        (CREATE_LEAD, "createLead", lambda ids: {"company": "a", "sourceSystem": "s\x00"},
         "VALIDATION", "sourceSystem"),
        (CREATE_LEAD, "createLead",
         lambda ids: {"company": "a", "attributes": {"a": "x" * 20_000}}, "VALIDATION",
         "attributes"),
        (UPDATE_LEAD, "updateLead", lambda ids: {"id": ids["lead"], "email": "\udc80"},
         "VALIDATION", "email"),
        (TRANSITION, "transitionLead",
         lambda ids: {"id": ids["lead"], "toStage": "MQL", "reason": "\x00"}, "VALIDATION",
         "reason"),
        (CREATE_ACTIVITY, "createActivity",
         lambda ids: {"leadId": ids["lead"], "type": "CALL", "occurredAt": GOOD_TIME,
                      "externalId": "\x00"}, "VALIDATION", "externalId"),
    ],
)  # fmt: skip
def test_single_record_mutations_refuse_hostile_values(
    client, seeded, token_a, mutation, name, make, code, field
):
    before = state(seeded)
    body = _post(client, token_a, mutation, {"i": make(_ids(client, token_a))})
    assert [(e["code"], e["field"]) for e in body["data"][name]["errors"]] == [(code, field)]
    assert state(seeded) == before


def test_deal_stage_names_and_probabilities_are_bounded(client, seeded, tenant_a):
    # given
    from tenants import services

    _, config = services.api_token_create(tenant=tenant_a, name="cfg", scopes=["config:write"])
    create = """mutation($i: CreateDealStageInput!) {
      createDealStage(input: $i) { dealStage { winProbability } errors { code field } } }"""
    # when
    results = [
        _post(client, config, create, {"i": i})["data"]["createDealStage"]
        for i in (
            {"name": "a\x00", "winProbability": "0.5"},
            {"name": "\ud800", "winProbability": "0.5"},
            {"name": "x", "winProbability": "1e400"},
            {"name": "y", "winProbability": "1E-999999999"},
            {"name": "z", "winProbability": "-0"},
        )
    ]
    # then
    assert results == [
        {"dealStage": None, "errors": [{"code": "VALIDATION", "field": "name"}]},
        {"dealStage": None, "errors": [{"code": "VALIDATION", "field": "name"}]},
        {"dealStage": None, "errors": [{"code": "VALIDATION", "field": "winProbability"}]},
        {"dealStage": None, "errors": [{"code": "VALIDATION", "field": "winProbability"}]},
        {"dealStage": {"winProbability": "0.0000"}, "errors": []},
    ]


# --- CSV import --------------------------------------------------------------------------

HEADER = "external_id,company,created_at,employee_count,attributes\n"


def _import(path: Path, *extra: str) -> str:
    out = io.StringIO()
    call_command("import_csv", "--tenant", "acme", "--kind", "leads", str(path), *extra,
                 stdout=out, stderr=io.StringIO())  # fmt: skip
    return out.getvalue()


def _leads(tenant: Any) -> list[str]:
    with tenant_context(tenant):
        return sorted(
            Lead.objects.filter(source_system="csv").values_list("external_id", flat=True)
        )


def test_csv_hostile_lines_are_line_errors_and_good_lines_are_stored(tmp_path, tenant_a):
    # given: a BOM, then one good line, hostile ones, and another good line
    lines = [
        HEADER.encode(),
        b"C1,Good KK,2025-04-01T10:00:00+09:00,,\n",
        b"C2,Old KK,0001-01-01T00:00:00+00:00,,\n",
        b"C3," + "\u682a\u5f0f\u4f1a\u793e".encode("cp932") + b",2025-04-01T10:00:00+09:00,,\n",
        b"C4,Big KK," + b"x" * 200_000 + b",,\n",
        b"C5,N\x00l KK,2025-04-01T10:00:00+09:00,,\n",
        b"C6,Wide KK,2025-04-01T10:00:00+09:00," + "\uff11\uff12".encode() + b",\n",
        b'C7,Deep KK,2025-04-01T10:00:00+09:00,,"' + b"[" * 5000 + b'"\n',
        b'C8,NaN KK,2025-04-01T10:00:00+09:00,,"{""a"": NaN}"\n',
        b"C9,Future KK,2999-01-01T00:00:00Z,,\n",
        b"C10,Good Too,2025-04-02T10:00:00+09:00,7,\n",
    ]
    path = tmp_path / "leads.csv"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(lines))
    # when
    out = _import(path)
    # then
    assert out.splitlines() == [
        "leads.csv: 10 rows, 2 created, 0 updated, 0 unchanged, 8 rejected.",
        "  line 3: created_at: " + WINDOW,
        "  line 4: the file is not in utf-8-sig: pass --encoding (e.g. --encoding cp932)",
        "  line 5: cannot read this line: field larger than field limit (131072)",
        "  line 6: company: Must not contain NUL characters.",
        "  line 7: employee_count: Expected an integer.",
        "  line 8: attributes: Expected an object.",
        "  line 9: attributes: Expected a JSON object (finite numbers, text, lists, objects).",
        "  line 10: created_at: " + WINDOW,
    ]
    assert _leads(tenant_a) == ["C1", "C10"]


def test_csv_in_another_encoding_is_read_with_encoding(tmp_path, tenant_a):
    path = tmp_path / "leads.csv"
    path.write_bytes((HEADER + "C1,株式会社テスト,2025-04-01T10:00:00+09:00,,\n").encode("cp932"))
    assert "1 created" in _import(path, "--encoding", "cp932")
    with tenant_context(tenant_a):
        assert Lead.objects.get(external_id="C1").company == "株式会社テスト"


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b"", (), "{path} is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", (),
         "Cannot read the header of {path}: the file is not in utf-8-sig: pass --encoding "
         "(e.g. --encoding cp932)."),
        (b"C1,Good KK,2025-04-01T10:00:00+09:00\n", (),
         "unknown columns: c1, good _k_k, 2025-04-01_t10:00:00+09:00; missing required columns: "
         "external_id, company, created_at. Columns for leads: external_id, company, "
         "created_at, contact_name, email, industry, employee_count, title, source, score, "
         "attributes, owner_email, owner_username, team_name."),
        (HEADER.encode(), ("--encoding", "klingon"),
         "Unknown encoding 'klingon' (e.g. utf-8, cp932)."),
        (HEADER.encode() + b"C1,Good KK,2025-04-01T10:00:00+09:00,,\n",
         ("--source-system", "s" * 51), "sourceSystem: Must have 0 to 50 characters."),
    ],
)  # fmt: skip
def test_csv_problems_of_the_whole_file_are_command_errors(
    tmp_path, tenant_a, content, extra, message
):
    # given
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    # when
    with pytest.raises(CommandError) as excinfo:
        _import(path, *extra)
    # then
    assert str(excinfo.value) == message.format(path=path)
    assert _leads(tenant_a) == []


def test_csv_unknown_tenant_missing_file_and_directory_are_command_errors(tmp_path, tenant_a):
    path = tmp_path / "leads.csv"
    path.write_text(HEADER)
    for args, message in [
        (("--tenant", "nobody", str(path)), "No tenant 'nobody'."),
        (("--tenant", "acme", str(tmp_path / "missing.csv")), f"No file {tmp_path}/missing.csv."),
        (("--tenant", "acme", str(tmp_path)), f"No file {tmp_path}."),
    ]:
        with pytest.raises(CommandError) as excinfo:
            call_command("import_csv", "--kind", "leads", *args, stdout=io.StringIO())
        assert str(excinfo.value) == message


def test_csv_command_exits_cleanly_as_a_process(tmp_path):
    # given: a directory where a file is expected (checked before the database is used)
    env = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "t", "PATH": "/usr/bin:/bin"}
    # when
    done = subprocess.run(
        [sys.executable, "manage.py", "import_csv", "--tenant", "acme", "--kind", "leads",
         str(tmp_path)],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # then
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.strip() == f"CommandError: No file {tmp_path}."
