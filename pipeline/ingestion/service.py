"""`records_ingest`: the one service behind partner ingestion (GraphQL) and CSV import."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from pipeline.bounds import text_problem
from pipeline.dirty import mark_activities_added, mark_days_dirty, mark_lead_history_dirty
from pipeline.hooks import run_records_arrived
from pipeline.ingestion.batch import Batch
from pipeline.ingestion.fields import Naming
from pipeline.ingestion.histories import ingest_deal_stage_changes, ingest_lead_stage_changes
from pipeline.ingestion.records import ingest_activities, ingest_deals, ingest_leads
from pipeline.ingestion.results import BATCH_KEYS, IngestResult
from pipeline.models import IngestionRequest
from tenants.context import TenantNotSet, current_tenant_id
from tenants.errors import ErrorCode, PublicError, camel_case
from tenants.models import Tenant

# Lead.source_system (and Activity's, Deal's) is varchar(50).
SOURCE_SYSTEM_MAX = 50
# Any constant works; the second key of the lock is the tenant id.
_ADVISORY_LOCK_CLASS = 0x1A6E57


def records_ingest(
    *,
    tenant: Tenant,
    batch: dict[str, Any],
    idempotency_key: str | None = None,
    actor_label: str,
    naming: Naming = Naming.SNAKE,
) -> IngestResult:
    """Upsert a partner batch into `tenant` (which must be the tenant in context).

    `batch` holds `source_system` and the row lists under the keys of BATCH_KEYS; `naming`
    says how the rows' own keys are spelled (`external_id`, or `externalId` as in the
    GraphQL API). Raises PublicError BATCH_TOO_LARGE (nothing stored), VALIDATION (a row
    list that is not a list; a source system or idempotency key that is too long or holds
    NUL or a lone surrogate) or CONFLICT (an idempotency key reused with a different
    payload); every other problem is a row error in the result.
    """
    if current_tenant_id() != tenant.pk:
        raise TenantNotSet("records_ingest must run inside tenant_context(tenant).")
    records_batch_check(batch=batch, idempotency_key=idempotency_key)
    with transaction.atomic():
        _lock_tenant_ingestion(tenant)
        if idempotency_key is not None:
            request_hash = _batch_hash(batch, naming)
            previous = IngestionRequest.objects.filter(key=idempotency_key).first()
            if previous is not None:
                if previous.request_hash != request_hash:
                    raise PublicError(
                        "This idempotency key was already used for a different batch.",
                        code=ErrorCode.CONFLICT,
                        field="idempotencyKey",
                    )
                return IngestResult.from_json(previous.response, replayed=True)
        result = _run(Batch(tenant=tenant, batch=batch, actor_label=actor_label, naming=naming))
        run_records_arrived(tenant.pk)
        if idempotency_key is not None:
            IngestionRequest.objects.create(
                tenant=tenant,
                key=idempotency_key,
                request_hash=request_hash,
                response=result.to_json(),
            )
    return result


def _check_text(value: Any, field: str, *, max_length: int, min_length: int = 0) -> None:
    """A batch-level text (source system, idempotency key): bounded and storable."""
    if value is None and min_length == 0:
        return
    if not isinstance(value, str):
        raise PublicError("Expected a string.", field=field)
    if not min_length <= len(value) <= max_length:
        raise PublicError(f"Must have {min_length} to {max_length} characters.", field=field)
    problem = text_problem(value)
    if problem is not None:
        raise PublicError(problem, field=field)


def records_batch_check(*, batch: dict[str, Any], idempotency_key: str | None = None) -> None:
    """The checks of a whole batch, before any of its rows is read or anything is looked up:
    row lists that are lists, at most INGEST_MAX_BATCH_ROWS rows, a bounded source system and
    idempotency key. Raises PublicError (BATCH_TOO_LARGE or VALIDATION); stores nothing."""
    for key in BATCH_KEYS.values():
        rows = batch.get(key)
        if rows is not None and not isinstance(rows, list | tuple):
            raise PublicError("Expected a list of rows.", field=camel_case(key))
    total = sum(len(batch.get(key) or ()) for key in BATCH_KEYS.values())
    limit = settings.INGEST_MAX_BATCH_ROWS
    if total > limit:
        raise PublicError(
            f"A batch may hold at most {limit} rows in total; this one has {total}.",
            code=ErrorCode.BATCH_TOO_LARGE,
        )
    _check_text(batch.get("source_system"), "sourceSystem", max_length=SOURCE_SYSTEM_MAX)
    if idempotency_key is not None:
        _check_text(idempotency_key, "idempotencyKey", max_length=200, min_length=1)


def _run(batch: Batch) -> IngestResult:
    # Order matters: rows refer to leads and deals stored by the earlier steps.
    ingest_leads(batch)
    ingest_activities(batch)
    ingest_deals(batch)
    ingest_lead_stage_changes(batch)
    ingest_deal_stage_changes(batch)
    for kind, moments in batch.dirty.items():
        mark_days_dirty(tenant=batch.tenant, datetimes=set(moments), kinds=kind)
    mark_activities_added(tenant=batch.tenant, added=batch.added_activities)
    if batch.rescan:
        mark_days_dirty(tenant=batch.tenant, datetimes=set(batch.rescan), rescan=True)
    mark_lead_history_dirty(tenant=batch.tenant, lead_ids=batch.reattributed_leads)
    batch.result.sort_errors()
    return batch.result


def _lock_tenant_ingestion(tenant: Tenant) -> None:
    # TRICKY: rows are classified (new / changed / unchanged) and stage histories merged
    # against what is stored; two batches of one tenant at once would both see a row as
    # new (unique-constraint error) or validate histories against a stale state. One
    # ingestion per tenant at a time, until the transaction ends. SQLite serialises writes.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_LOCK_CLASS, tenant.pk]
            )


def _batch_hash(batch: dict[str, Any], naming: Naming) -> str:
    """A digest of the batch's content, the same whichever naming or GraphQL path sent it.

    Keys are spelled in camelCase and absent values (null) dropped, so the typed input (all
    fields, unset ones null) and the JSON input (only the keys sent) of one batch agree.
    """
    to_camel = camel_case if naming is Naming.SNAKE else str

    def canonical(row: Any) -> Any:
        if not isinstance(row, dict):
            return row
        return {to_camel(key): value for key, value in row.items() if value is not None}

    content = {
        "sourceSystem": batch.get("source_system"),
        **{
            camel_case(key): [canonical(row) for row in batch.get(key) or ()]
            for key in BATCH_KEYS.values()
        },
    }
    try:
        encoded = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
    except RecursionError:
        # NOTE: only a value nested about a thousand levels deep gets here; its row would be
        # refused anyway, but the batch cannot be recognised when it is sent again.
        raise PublicError("A value of this batch is nested too deeply.") from None
    return hashlib.sha256(encoded.encode()).hexdigest()
