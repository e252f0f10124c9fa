"""GraphQL mutation for partner ingestion: `ingestRecords`, a batch upsert with row errors."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from pipeline import ingestion
from tenants.graphql.context import Info
from tenants.graphql.errors import MutationError, run_mutation
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
    at: str = strawberry.field(description=_TIME)
    reason: str | None = None


@strawberry.input(description="A deal entering a stage at the partner's own (past) time.")
class DealStageChangeInput:
    deal_external_id: str
    stage_name: str
    at: str = strawberry.field(description=_TIME)


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


@strawberry.type(description="What happened to the rows of one kind.")
class IngestCounts:
    created: int
    updated: int
    unchanged: int
    rejected: int


@strawberry.type(name="RowError", description="A batch row that was not stored, and why.")
class RowErrorType:
    kind: IngestKind
    index: int = strawberry.field(description="The row's position in its input list.")
    field: str | None
    code: RowErrorCode
    message: str


@strawberry.type
class IngestRecordsPayload:
    leads: IngestCounts | None = None
    activities: IngestCounts | None = None
    deals: IngestCounts | None = None
    lead_stage_changes: IngestCounts | None = None
    deal_stage_changes: IngestCounts | None = None
    replayed: bool = strawberry.field(
        default=False, description="True when this is the stored result of an earlier request."
    )
    row_errors: list[RowErrorType] = strawberry.field(default_factory=list)
    errors: list[MutationError] = strawberry.field(default_factory=list)


def _rows(rows: list[Any]) -> list[dict[str, Any]]:
    # Inputs are dataclasses whose attributes are the snake_case field names.
    return [dict(vars(row)) for row in rows]


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


@strawberry.type
class IngestionMutation:
    @strawberry.mutation(
        description=(
            "Upsert a batch of partner records (needs records:write). Bad rows come back in "
            "rowErrors and the rest is stored; resending a batch changes nothing. With an "
            "idempotencyKey a retry returns the first result."
        )
    )
    def ingest_records(
        self, info: Info, input: IngestRecordsInput, idempotency_key: str | None = None
    ) -> IngestRecordsPayload:
        def build() -> IngestRecordsPayload:
            tenant = info.context.require_scope(Scope.RECORDS_WRITE)
            batch = {
                "source_system": input.source_system,
                **{key: _rows(getattr(input, key)) for key in ingestion.BATCH_KEYS.values()},
            }
            result = ingestion.records_ingest(
                tenant=tenant,
                batch=batch,
                idempotency_key=idempotency_key,
                actor_label=_actor_label(info),
            )
            return _payload(result)

        return run_mutation(build, lambda errors: IngestRecordsPayload(errors=errors))
