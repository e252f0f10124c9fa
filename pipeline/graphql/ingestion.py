"""GraphQL mutations for partner ingestion: batch upserts with per-row errors.

`ingestRecords` takes typed input objects; `ingestRecordsJson` takes the same rows as JSON
arrays (same camelCase field names), which skips GraphQL's coercion of every field of every
row: faster for large batches, and a value of the wrong type is a row error instead of a
refused request. Both run the same validation and service and return the same payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.arguments import InputContext

from pipeline import ingestion
from pipeline.models import IngestionRequest
from tenants import rate_limits
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.scopes import Scope

IngestKind = strawberry.enum(
    ingestion.IngestKind, name="IngestKind", description="The kind of row in a batch."
)
RowErrorCode = strawberry.enum(
    ingestion.RowErrorCode, name="RowErrorCode", description="Why a batch row was not stored."
)

_TIME = "ISO 8601 date-time with an offset, e.g. 2025-04-01T09:30:00+09:00."


@strawberry.input(description="A lead, upserted by (sourceSystem, externalId).")
class LeadRecordInput:
    external_id: str
    company: str | None = None
    contact_name: str | None = None
    email: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    title: str | None = None
    attributes: JSON | None = None
    source: str | None = strawberry.field(default=None, description="Channel, e.g. web, event.")
    owner_email: str | None = strawberry.field(
        default=None, description="The owning member, by e-mail (or use ownerUsername)."
    )
    owner_username: str | None = None
    team_name: str | None = None
    score: int | None = None
    created_at: str | None = strawberry.field(
        default=None, description=f"When the lead was created in the source system; {_TIME}"
    )


@strawberry.input(description="An activity, upserted by (sourceSystem, externalId).")
class ActivityRecordInput:
    external_id: str
    lead_external_id: str | None = None
    rep_email: str | None = None
    rep_username: str | None = None
    type: str | None = strawberry.field(default=None, description="call, email, meeting, other.")
    occurred_at: str | None = strawberry.field(default=None, description=_TIME)
    call_outcome: str | None = strawberry.field(
        default=None, description="connected, no_answer, voicemail, busy, wrong_number, other."
    )
    email_delivered: bool | None = None
    email_opened: bool | None = None
    email_clicked: bool | None = None
    duration_seconds: int | None = None


@strawberry.input(description="A deal, upserted by (sourceSystem, externalId).")
class DealRecordInput:
    external_id: str
    lead_external_id: str | None = None
    name: str | None = None
    amount: str | None = strawberry.field(
        default=None, description='A decimal string, e.g. "1200000.00"; never negative.'
    )
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217; the workspace currency if left out."
    )
    stage_name: str | None = strawberry.field(
        default=None, description="The name of one of the workspace's deal stages."
    )
    owner_email: str | None = None
    owner_username: str | None = None
    sourced_by_is: bool | None = None
    created_at: str | None = strawberry.field(default=None, description=_TIME)
    closed_at: str | None = strawberry.field(default=None, description=_TIME)


@strawberry.input(description="A lead's lifecycle change at the partner's own (past) time.")
class LeadStageChangeInput:
    lead_external_id: str
    to_stage: str = strawberry.field(
        description="lead, mql, sql, meeting, opportunity, won, lost, recycled."
    )
    at: str = strawberry.field(
        description=f"{_TIME} With movedTo or withdrawn: the time the change was sent with."
    )
    reason: str | None = None
    moved_to: str | None = strawberry.field(
        default=None,
        description=(
            f"Correct the stored change (leadExternalId, toStage, at): move it here. {_TIME}"
        ),
    )
    withdrawn: bool | None = strawberry.field(
        default=None,
        description="Correct the stored change (leadExternalId, toStage, at): remove it.",
    )


@strawberry.input(description="A deal entering a stage at the partner's own (past) time.")
class DealStageChangeInput:
    deal_external_id: str
    stage_name: str
    at: str = strawberry.field(
        description=f"{_TIME} With movedTo or withdrawn: the time the change was sent with."
    )
    moved_to: str | None = strawberry.field(
        default=None,
        description=(
            f"Correct the stored change (dealExternalId, stageName, at): move it here. {_TIME}"
        ),
    )
    withdrawn: bool | None = strawberry.field(
        default=None,
        description="Correct the stored change (dealExternalId, stageName, at): remove it.",
    )


@strawberry.input(
    description="One batch of at most INGEST_MAX_BATCH_ROWS rows (of all kinds together)."
)
class IngestRecordsInput:
    source_system: str = strawberry.field(
        description="The partner system every externalId in this batch belongs to."
    )
    leads: list[LeadRecordInput] = strawberry.field(default_factory=list)
    activities: list[ActivityRecordInput] = strawberry.field(default_factory=list)
    deals: list[DealRecordInput] = strawberry.field(default_factory=list)
    lead_stage_changes: list[LeadStageChangeInput] = strawberry.field(default_factory=list)
    deal_stage_changes: list[DealStageChangeInput] = strawberry.field(default_factory=list)


_JSON_ROWS = (
    "A JSON array of objects with the fields of {input} (camelCase keys, values as JSON "
    "strings, numbers and booleans). An unknown key or a value of the wrong type is a row "
    "error, not a request error."
)


@strawberry.input(
    description=(
        "The rows of IngestRecordsInput as JSON arrays, for large batches: at most "
        "INGEST_MAX_BATCH_ROWS rows (of all kinds together)."
    )
)
class IngestRecordsJsonInput:
    source_system: str = strawberry.field(
        description="The partner system every externalId in this batch belongs to."
    )
    leads: JSON | None = strawberry.field(
        default=None, description=_JSON_ROWS.format(input="LeadRecordInput")
    )
    activities: JSON | None = strawberry.field(
        default=None, description=_JSON_ROWS.format(input="ActivityRecordInput")
    )
    deals: JSON | None = strawberry.field(
        default=None, description=_JSON_ROWS.format(input="DealRecordInput")
    )
    lead_stage_changes: JSON | None = strawberry.field(
        default=None, description=_JSON_ROWS.format(input="LeadStageChangeInput")
    )
    deal_stage_changes: JSON | None = strawberry.field(
        default=None, description=_JSON_ROWS.format(input="DealStageChangeInput")
    )


@strawberry.type(description="What happened to the rows of one kind.")
class IngestCounts:
    created: int
    updated: int
    unchanged: int
    rejected: int
    withdrawn: int = strawberry.field(
        default=0, description="Stage changes withdrawn (stage-change kinds only)."
    )


@strawberry.type(name="RowError", description="A batch row that was not stored, and why.")
class RowErrorType:
    kind: IngestKind
    index: int = strawberry.field(description="The row's position in its input list.")
    field: str | None
    code: RowErrorCode
    message: str


@strawberry.type
class IngestRecordsPayload(MutationPayload):
    leads: IngestCounts | None = None
    activities: IngestCounts | None = None
    deals: IngestCounts | None = None
    lead_stage_changes: IngestCounts | None = None
    deal_stage_changes: IngestCounts | None = None
    replayed: bool = strawberry.field(
        default=False, description="True when this is the stored result of an earlier request."
    )
    row_errors: list[RowErrorType] = strawberry.field(default_factory=list)


def _row_as_sent(cls: type, value: Mapping[str, Any], context: InputContext) -> dict[str, Any]:
    """A record input's value as GraphQL coerced it: a dict keyed by the camelCase names.

    TRICKY: Strawberry would build an instance per row by converting every field in Python,
    which costs more than the whole ingestion of the row; the record inputs hold only
    scalars, which GraphQL has already checked against the schema, so the service reads the
    values as they are (`Naming.CAMEL`). Omitted fields arrive as their published default,
    null.
    """
    return dict(value)


_RECORD_INPUTS = (
    LeadRecordInput,
    ActivityRecordInput,
    DealRecordInput,
    LeadStageChangeInput,
    DealStageChangeInput,
)
for _input in _RECORD_INPUTS:
    _input.__strawberry_definition__.from_input = _row_as_sent  # type: ignore[attr-defined]


def _actor_label(info: Info) -> str:
    principal = info.context.principal
    if principal.token is not None:
        return f"token:{principal.token.name}"
    return f"user:{principal.user.get_username()}" if principal.user is not None else ""


def _payload(result: ingestion.IngestResult) -> IngestRecordsPayload:
    counts = {
        ingestion.BATCH_KEYS[kind]: IngestCounts(**vars(value))
        for kind, value in result.counts.items()
    }
    return IngestRecordsPayload(
        **counts,
        replayed=result.replayed,
        row_errors=[RowErrorType(**vars(error)) for error in result.row_errors],
    )


def _rows_to_charge(batch: dict[str, Any], idempotency_key: str | None) -> int:
    """The rows a batch costs against the token's rows-per-minute limit: all of them, good
    or not; none for the retry of a stored idempotent batch (it gets the stored result)."""
    if idempotency_key and IngestionRequest.objects.filter(key=idempotency_key).exists():
        return 0
    lists = (batch.get(key) for key in ingestion.BATCH_KEYS.values())
    return sum(len(rows) for rows in lists if isinstance(rows, list | tuple))


def _ingest(
    info: Info,
    batch: dict[str, Any],
    idempotency_key: str | None,
    naming: ingestion.Naming,
) -> IngestRecordsPayload:
    tenant = info.context.require_tenant()
    # NOTE: before the charge, which looks the idempotency key up: a hostile key (NUL, a
    # lone surrogate) is refused as VALIDATION before any query carries it.
    ingestion.records_batch_check(batch=batch, idempotency_key=idempotency_key)
    with rate_limits.rows_charged(
        principal=info.context.principal,
        rows=_rows_to_charge(batch, idempotency_key),
        response=info.context.response,
    ) as charge:
        result = ingestion.records_ingest(
            tenant=tenant,
            batch=batch,
            idempotency_key=idempotency_key,
            actor_label=_actor_label(info),
            naming=naming,
        )
        if result.replayed and charge is not None:
            rate_limits.rate_limit_refund(charge=charge)  # a racing retry stored nothing
    return _payload(result)


@strawberry.type
class IngestionMutation:
    @mutation(
        scope=Scope.RECORDS_WRITE,
        description=(
            "Upsert a batch of partner records (needs records:write). Bad rows come back in "
            "rowErrors and the rest is stored; resending a batch changes nothing. With an "
            "idempotencyKey a retry returns the first result."
        ),
    )
    def ingest_records(
        self, info: Info, input: IngestRecordsInput, idempotency_key: str | None = None
    ) -> IngestRecordsPayload:
        batch = {
            "source_system": input.source_system,
            **{key: getattr(input, key) for key in ingestion.BATCH_KEYS.values()},
        }
        return _ingest(info, batch, idempotency_key, ingestion.Naming.CAMEL)

    @mutation(
        scope=Scope.RECORDS_WRITE,
        description=(
            "ingestRecords with the rows as JSON arrays: the same validation, row errors, "
            "idempotency and payload; faster for large batches, and a value of the wrong type "
            "is a row error (needs records:write)."
        ),
    )
    def ingest_records_json(
        self, info: Info, input: IngestRecordsJsonInput, idempotency_key: str | None = None
    ) -> IngestRecordsPayload:
        batch = {
            "source_system": input.source_system,
            **{key: getattr(input, key) for key in ingestion.BATCH_KEYS.values()},
        }
        return _ingest(info, batch, idempotency_key, ingestion.Naming.CAMEL)
