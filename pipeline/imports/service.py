"""`crm_file_import`: a CRM export mapped by a preset and stored through records_ingest, in
chunks with idempotency keys, or classified only (a dry run that writes nothing)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from pipeline.imports.mapping import LineRefused, Mapper, header_resolve, import_config_load
from pipeline.ingestion import IngestKind, IngestResult, KindCounts, records_ingest
from pipeline.management.commands.import_csv import _ENCODING_HINT, _undecodable
from tenants.context import tenant_context
from tenants.errors import PublicError, camel_case
from tenants.models import Tenant

# The batch key of each kind a preset writes.
_BATCH_KEYS = {
    "leads": IngestKind.LEAD,
    "activities": IngestKind.ACTIVITY,
    "deals": IngestKind.DEAL,
    "lead_stage_changes": IngestKind.LEAD_STAGE_CHANGE,
    "deal_stage_changes": IngestKind.DEAL_STAGE_CHANGE,
}
# Our fields as the ingestion names them in errors → the preset field of their column.
_ERROR_COLUMNS = {
    "owner_email": "owner",
    "owner_username": "owner",
    "rep_email": "rep",
    "rep_username": "rep",
    "stage_name": "stage",
    "to_stage": "lifecycle_stage",
    "deal_external_id": "deal_external_id",
    "duration_seconds": "duration",
}


@dataclass
class ImportReport:
    """What an import did, or would do (dry run), per kind of record; errors by line."""

    preset: str
    dry_run: bool
    lines: int = 0
    skipped: int = 0
    replayed_chunks: int = 0
    counts: dict[IngestKind, KindCounts] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def kind(self, kind: IngestKind) -> KindCounts:
        return self.counts.setdefault(kind, KindCounts())


class _Rollback(Exception):
    """Ends a dry run: everything it wrote is rolled back."""


def crm_file_import(
    *,
    tenant: Tenant,
    preset: str,
    path: Path,
    dry_run: bool = False,
    encoding: str = "utf-8-sig",
    time_zone: str | None = None,
    progress: Callable[[int], None] | None = None,
    name: str | None = None,
    encoding_hint: str = _ENCODING_HINT,
) -> ImportReport:
    """Import a CRM export file into `tenant` with its preset `preset` (see presets.py).

    Each chunk (at most INGEST_MAX_BATCH_ROWS records) is one records_ingest call, with the
    API's validation and bounds, keyed by the file's content, the preset and the chunk's
    position: a chunk imported before is replayed, not stored twice, and its rows reported
    unchanged. A dry run runs the same code in one transaction that is rolled back: no row,
    dirty day, snapshot refresh or idempotency record survives it. Raises PublicError for a
    problem of the whole file (unknown preset or zone, missing columns, unreadable header);
    a bad line is an error of the report, with its line number. `name` is the file's name
    in messages (an upload's, not its temporary copy's); `encoding_hint` says how to pass
    another encoding (the command's option, or the API's argument).
    """
    name = name or path.name
    report = ImportReport(preset=preset, dry_run=dry_run)
    digest = _file_digest(path)
    with tenant_context(tenant):
        config = import_config_load(tenant=tenant, name=preset, time_zone=time_zone)
    limit = settings.INGEST_MAX_BATCH_ROWS
    key_base = hashlib.sha256(f"{config.fingerprint()}:{digest}:{limit}".encode()).hexdigest()
    hint = encoding_hint.format(encoding=encoding)

    def ingest(chunk: _Chunk, number: int) -> None:
        result = records_ingest(
            tenant=tenant,
            batch={"source_system": config.source_system, **chunk.rows},
            idempotency_key=f"crm:{key_base[:48]}:{number}",
            actor_label=f"import_crm {preset} {name}"[:150],
        )
        _count(report, chunk, result, mapper)

    with path.open(newline="", encoding=encoding, errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise PublicError(f"{name} is empty.", field="file") from None
        except csv.Error as error:
            raise PublicError(f"Cannot read the header: {error}.", field="file") from None
        if _undecodable(header):
            raise PublicError(f"Cannot read the header: {hint}.", field="file")
        with tenant_context(tenant):
            mapper = Mapper(
                config=config,
                tenant=tenant,
                positions=header_resolve(config, header),
                header=header,
            )
            # NOTE: lines are mapped between chunks, outside the tenant's transaction: the
            # members and deal stages they refer to are read now, once.
            mapper.members()
            mapper.closed_stages()
        chunks = _chunks(reader, mapper, report, header, hint, limit, progress)
        if dry_run:
            try:
                with tenant_context(tenant):
                    for number, chunk in enumerate(chunks):
                        ingest(chunk, number)
                    raise _Rollback
            except _Rollback:
                pass
        else:
            for number, chunk in enumerate(chunks):
                with tenant_context(tenant):
                    ingest(chunk, number)
    report.skipped = mapper.skipped
    report.errors.sort(key=lambda error: error[0])
    return report


@dataclass
class _Chunk:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lines: dict[IngestKind, list[int]] = field(default_factory=dict)
    size: int = 0

    def add(self, line: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        for key, batch_rows in rows.items():
            self.rows.setdefault(key, []).extend(batch_rows)
            self.lines.setdefault(_BATCH_KEYS[key], []).extend([line] * len(batch_rows))
            self.size += len(batch_rows)


def _chunks(
    reader: Any,
    mapper: Mapper,
    report: ImportReport,
    header: list[str],
    hint: str,
    limit: int,
    progress: Callable[[int], None] | None,
) -> Iterator[_Chunk]:
    """Chunks of mapped lines; a line that cannot be read or mapped is an error of the report."""
    kind = mapper.config.preset.kind
    chunk = _Chunk()
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            # E.g. a cell over csv.field_size_limit(); the reader goes on after it.
            report.lines += 1
            report.kind(kind).rejected += 1
            report.errors.append((reader.line_num, f"cannot read this line: {error}"))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        report.lines += 1
        if progress is not None:
            progress(1)
        line = reader.line_num
        if _undecodable(cells):
            refused = hint
        elif len(cells) != len(header):
            refused = f"expected {len(header)} cells, found {len(cells)}"
        else:
            try:
                rows = mapper.map(cells)
            except LineRefused as error:
                refused = str(error)
            else:
                refused = ""
        if refused:
            report.kind(kind).rejected += 1
            report.errors.append((line, refused))
            continue
        size = sum(len(batch_rows) for batch_rows in rows.values())
        if chunk.size and chunk.size + size > limit:
            yield chunk
            chunk = _Chunk()
        chunk.add(line, rows)
    if chunk.size:
        yield chunk


def _count(report: ImportReport, chunk: _Chunk, result: IngestResult, mapper: Mapper) -> None:
    for kind, counts in result.counts.items():
        if kind not in chunk.lines:
            continue
        total = report.kind(kind)
        if result.replayed:
            # NOTE: this chunk was imported before (same file, same preset): nothing was
            # written now, and its stored rows stand as they were.
            total.unchanged += counts.created + counts.updated + counts.unchanged
        else:
            total.created += counts.created
            total.updated += counts.updated
            total.unchanged += counts.unchanged
        total.rejected += counts.rejected
    if result.replayed:
        report.replayed_chunks += 1
    by_line: dict[int, list[str]] = {}
    for error in result.row_errors:
        line = chunk.lines[error.kind][error.index]
        where = ""
        if error.field:
            snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in error.field)
            where = f"{mapper.column(_ERROR_COLUMNS.get(snake, snake))}: "
        messages = by_line.setdefault(line, [])
        if error.kind is IngestKind.LEAD_STAGE_CHANGE and messages:
            continue  # the line's lead was refused: its stage changes follow from that
        messages.append(f"{camel_case(error.kind.value)} {where}{error.message}")
    report.errors.extend((line, "; ".join(messages)) for line, messages in by_line.items())


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
