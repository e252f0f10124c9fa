"""Import a spreadsheet / SFA export (CSV) into a tenant: a user's first migration.

    manage.py import_csv --tenant acme --kind leads leads.csv

The CSV has a header row; column names are the record fields below (snake_case, or the
camelCase of the GraphQL API). References between files use external ids, so import leads
first, then activities, deals and lead stage changes. Empty cells are "not given". Times are
ISO 8601 with an offset (2026-04-01T10:30:00+09:00). Booleans: true/false, 1/0, yes/no.

leads:              external_id*, company*, created_at*, contact_name, email, industry,
                    employee_count, title, source, score, attributes (a JSON object),
                    owner_email | owner_username, team_name
activities:         external_id*, lead_external_id*, type* (call, email, meeting, other),
                    occurred_at*, rep_email | rep_username, call_outcome, email_delivered,
                    email_opened, email_clicked, duration_seconds
deals:              external_id*, lead_external_id*, stage_name*, amount*, created_at*, name,
                    currency, owner_email | owner_username, sourced_by_is, closed_at
lead_stage_changes: lead_external_id*, to_stage*, at*, reason

Rows are validated by the same code as the partner API (pipeline.ingestion.records_ingest):
rows are sent in chunks (each chunk one transaction, stored in bulk); re-importing a file
updates rows by external id instead of duplicating them. Rejected rows are listed at the end
with their CSV line number and the reason; good rows are stored. A line that cannot be read
(bytes that are not in --encoding, a cell over the csv module's field size limit) is a
rejected line too; the command never ends in a traceback.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from pipeline.bounds import INTEGER_TEXT
from pipeline.ingestion import records_ingest
from tenants.context import tenant_context
from tenants.errors import PublicError
from tenants.models import Tenant

COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": (
        "external_id", "company", "created_at", "contact_name", "email", "industry",
        "employee_count", "title", "source", "score", "attributes", "owner_email",
        "owner_username", "team_name",
    ),
    "activities": (
        "external_id", "lead_external_id", "type", "occurred_at", "rep_email", "rep_username",
        "call_outcome", "email_delivered", "email_opened", "email_clicked", "duration_seconds",
    ),
    "deals": (
        "external_id", "lead_external_id", "stage_name", "amount", "created_at", "name",
        "currency", "owner_email", "owner_username", "sourced_by_is", "closed_at",
    ),
    "lead_stage_changes": ("lead_external_id", "to_stage", "at", "reason"),
}  # fmt: skip
REQUIRED: dict[str, tuple[str, ...]] = {
    "leads": ("external_id", "company", "created_at"),
    "activities": ("external_id", "lead_external_id", "type", "occurred_at"),
    "deals": ("external_id", "lead_external_id", "stage_name", "amount", "created_at"),
    "lead_stage_changes": ("lead_external_id", "to_stage", "at"),
}
INTEGERS = {"employee_count", "score", "duration_seconds"}
BOOLEANS = {"email_delivered", "email_opened", "email_clicked", "sourced_by_is"}
JSON_OBJECTS = {"attributes"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
# NOTE: bytes that are not in the file's encoding are read as lone surrogates
# (errors="surrogateescape"), so one bad line is reported and the others are stored.
_ENCODING_HINT = "the file is not in {encoding}: pass --encoding (e.g. --encoding cp932)"


def snake(name: str) -> str:
    """camelCase or snake_case header → snake_case field name (a UTF-8 BOM is dropped)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.strip().lstrip("\ufeff")).lower()


def _undecodable(cells: list[str]) -> bool:
    """Whether a line held bytes that are not in the file's encoding."""
    for cell in cells:
        if not cell.isascii():
            try:
                cell.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def convert(column: str, text: str) -> Any:
    """A CSV cell as the value the ingestion expects; unparseable text is passed on as is,
    so the shared validation rejects it with its usual message."""
    if column in INTEGERS:
        # ASCII digits only (int() also reads full-width digits and "1_000").
        digits = text.replace(",", "")
        return int(digits) if INTEGER_TEXT.fullmatch(digits) else text
    if column in BOOLEANS:
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else text
    if column in JSON_OBJECTS:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text
    return text


class Command(BaseCommand):
    help = "Import leads, activities, deals or lead stage changes from a CSV file (see --help)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--kind", required=True, choices=sorted(COLUMNS))
        parser.add_argument(
            "--source-system",
            default="csv",
            help="The system the external ids belong to (default: csv).",
        )
        parser.add_argument("--chunk-size", type=int, default=0, help="Rows per batch.")
        parser.add_argument("--encoding", default="utf-8-sig", help="e.g. cp932 for Excel.")

    def handle(self, *args: Any, **options: Any) -> None:
        kind: str = options["kind"]
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        encoding: str = options["encoding"]
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise CommandError(f"Unknown encoding {encoding!r} (e.g. utf-8, cp932).") from None
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        try:
            self._import(tenant, kind, path, encoding, options)
        except PublicError as error:
            # A problem of the whole import (e.g. --source-system); earlier chunks are stored.
            where = f"{error.field}: " if error.field else ""
            raise CommandError(f"{where}{error.message}") from None
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from None
        except UnicodeError:
            hint = _ENCODING_HINT.format(encoding=encoding)
            raise CommandError(f"Cannot read {path}: {hint}.") from None

    def _import(
        self, tenant: Tenant, kind: str, path: Path, encoding: str, options: dict[str, Any]
    ) -> None:
        limit = settings.INGEST_MAX_BATCH_ROWS
        chunk_size = min(max(options["chunk_size"], 0) or limit, limit)
        source_system = options["source_system"]
        rejected: list[tuple[int, str]] = []
        stored = {"created": 0, "updated": 0, "unchanged": 0}
        total = 0
        hint = _ENCODING_HINT.format(encoding=encoding)
        with path.open(newline="", encoding=encoding, errors="surrogateescape") as handle:
            reader = csv.reader(handle)
            try:
                first = next(reader)
            except StopIteration:
                raise CommandError(f"{path} is empty.") from None
            except csv.Error as error:
                raise CommandError(f"Cannot read the header of {path}: {error}.") from None
            if _undecodable(first):
                raise CommandError(f"Cannot read the header of {path}: {hint}.")
            header = [snake(name) for name in first]
            self._check_header(kind, header)
            rows: list[dict[str, Any]] = []
            lines: list[int] = []
            progress = tqdm(desc=f"{kind}", unit=" rows", file=self.stderr._out, disable=None)

            def flush() -> None:
                batch_key = kind
                with tenant_context(tenant):
                    result = records_ingest(
                        tenant=tenant,
                        batch={"source_system": source_system, batch_key: rows},
                        actor_label=f"import_csv {path.name}",
                    )
                for counts in result.counts.values():
                    stored["created"] += counts.created
                    stored["updated"] += counts.updated
                    stored["unchanged"] += counts.unchanged
                reasons: dict[int, list[str]] = {}
                for error in result.row_errors:
                    where = f"{snake(error.field)}: " if error.field else ""
                    reasons.setdefault(error.index, []).append(f"{where}{error.message}")
                rejected.extend((lines[i], "; ".join(r)) for i, r in sorted(reasons.items()))
                progress.update(len(rows))
                rows.clear()
                lines.clear()

            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as error:
                    # E.g. a cell over csv.field_size_limit(); the reader goes on after it.
                    total += 1
                    rejected.append((reader.line_num, f"cannot read this line: {error}"))
                    progress.update(1)
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                total += 1
                if _undecodable(cells):
                    rejected.append((reader.line_num, hint))
                    progress.update(1)
                    continue
                if len(cells) != len(header):
                    rejected.append(
                        (reader.line_num, f"expected {len(header)} cells, found {len(cells)}")
                    )
                    progress.update(1)
                    continue
                rows.append(
                    {
                        column: convert(column, cell.strip())
                        for column, cell in zip(header, cells, strict=True)
                        if cell.strip() != ""
                    }
                )
                lines.append(reader.line_num)
                if len(rows) >= chunk_size:
                    flush()
            if rows:
                flush()
            progress.close()
        rejected.sort()
        self.stdout.write(
            f"{path.name}: {total} rows, {stored['created']} created, {stored['updated']} "
            f"updated, {stored['unchanged']} unchanged, {len(rejected)} rejected."
        )
        for line, reason in rejected:
            self.stdout.write(f"  line {line}: {reason}")

    def _check_header(self, kind: str, header: list[str]) -> None:
        # Shown in the message: bounded, in case the "header" is a line of binary junk.
        unknown = [name[:40] for name in header if name not in COLUMNS[kind]][:10]
        missing = [name for name in REQUIRED[kind] if name not in header]
        duplicated = sorted({name for name in header if header.count(name) > 1})
        problems = []
        if unknown:
            problems.append(f"unknown columns: {', '.join(unknown)}")
        if missing:
            problems.append(f"missing required columns: {', '.join(missing)}")
        if duplicated:
            problems.append(f"repeated columns: {', '.join(duplicated)}")
        if problems:
            raise CommandError(
                f"{'; '.join(problems)}. Columns for {kind}: {', '.join(COLUMNS[kind])}."
            )
