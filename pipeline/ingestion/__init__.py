"""Partner ingestion: one set-based upsert of a batch of leads, activities, deals and histories.

A batch is a dict of row lists (`leads`, `activities`, `deals`, `lead_stage_changes`,
`deal_stage_changes`) plus the `source_system` every row's `external_id` belongs to; rows
reference each other by external id. Bad rows are reported and skipped, good rows are
stored; sending the same batch twice changes nothing. Times are the partner's: stage
histories arrive backdated and out of order and are stored at their own times.

Modules: `service` (the entry point, limits, idempotency), `batch` (shared state and
references), `fields` (row validation), `records` (leads, activities, deals), `histories`
(stage changes), `upsert` (the set-based writes), `results` (counts and row errors).
"""

from pipeline.ingestion.fields import Naming
from pipeline.ingestion.results import (
    BATCH_KEYS,
    IngestKind,
    IngestResult,
    KindCounts,
    RowError,
    RowErrorCode,
)
from pipeline.ingestion.service import records_batch_check, records_ingest

__all__ = [
    "BATCH_KEYS",
    "IngestKind",
    "IngestResult",
    "KindCounts",
    "Naming",
    "RowError",
    "RowErrorCode",
    "records_batch_check",
    "records_ingest",
]
