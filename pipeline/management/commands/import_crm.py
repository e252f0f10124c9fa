"""Import a HubSpot or Salesforce CSV export into a tenant with a preset (see docs/imports.md).

    manage.py import_crm --tenant acme --preset hubspot-contacts contacts.csv [--dry-run]
        [--encoding cp932] [--time-zone Asia/Tokyo]

Presets: hubspot-contacts, hubspot-activities, hubspot-deals, salesforce-leads,
salesforce-tasks, salesforce-opportunities, salesforce-opportunity-history, or a tenant's
own ImportPreset (admin) built on one of them. Import leads/contacts first, then activities
and deals/opportunities, then the opportunity history: rows refer to each other by the
export's ids. `--dry-run` reports what would be created, updated, unchanged or refused and
writes nothing. The command never ends in a traceback: a bad line is reported with its
line number, a bad file with the reason.
"""

from __future__ import annotations

import codecs
import zoneinfo
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from pipeline.imports.presets import PRESETS
from pipeline.imports.service import ImportReport, crm_file_import
from pipeline.ingestion import IngestKind
from pipeline.management.commands.import_csv import _ENCODING_HINT
from tenants.errors import PublicError
from tenants.models import Tenant

# A file with many bad lines lists the first ones; the counts cover them all.
ERRORS_SHOWN = 50


class Command(BaseCommand):
    help = "Import a HubSpot or Salesforce CSV export with a preset (see --help)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument(
            "--preset", required=True, help=f"One of {', '.join(PRESETS)}, or the tenant's own."
        )
        parser.add_argument("--dry-run", action="store_true", help="Report only; write nothing.")
        parser.add_argument("--encoding", default="utf-8-sig", help="e.g. cp932 for Excel.")
        parser.add_argument("--time-zone", help="Zone of times without an offset (the preset's).")
        parser.add_argument("--errors", type=int, default=ERRORS_SHOWN, help="Errors listed.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        encoding: str = options["encoding"]
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise CommandError(f"Unknown encoding {encoding!r} (e.g. utf-8, cp932).") from None
        zone = options["time_zone"]
        if zone is not None and zone not in zoneinfo.available_timezones():
            raise CommandError(f"Unknown time zone {zone!r} (e.g. Asia/Tokyo).")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        progress = tqdm(desc=path.name, unit=" lines", file=self.stderr._out, disable=None)
        try:
            report = crm_file_import(
                tenant=tenant,
                preset=options["preset"],
                path=path,
                dry_run=options["dry_run"],
                encoding=encoding,
                time_zone=zone,
                progress=progress.update,
            )
        except PublicError as error:
            # A problem of the whole file; with chunks already stored, re-running is safe.
            raise CommandError(error.message) from None
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from None
        except UnicodeError:
            hint = _ENCODING_HINT.format(encoding=encoding)
            raise CommandError(f"Cannot read {path}: {hint}.") from None
        finally:
            progress.close()
        self._write(path, report, options["errors"])

    def _write(self, path: Path, report: ImportReport, shown: int) -> None:
        mode = "dry run, nothing written" if report.dry_run else "imported"
        self.stdout.write(f"{path.name} ({report.preset}, {mode}): {report.lines} lines.")
        verb = "would be " if report.dry_run else ""
        for kind in IngestKind:
            counts = report.counts.get(kind)
            if counts is None:
                continue
            self.stdout.write(
                f"  {kind.value}: {counts.created} {verb}created, {counts.updated} {verb}updated, "
                f"{counts.unchanged} unchanged, {counts.rejected} refused"
            )
        if report.skipped:
            self.stdout.write(f"  {report.skipped} lines skipped (not a stage change)")
        if report.replayed_chunks:
            self.stdout.write(
                f"  {report.replayed_chunks} chunk(s) of this file were imported before with "
                "this preset: nothing written for them"
            )
        for line, message in report.errors[:shown]:
            self.stdout.write(f"  line {line}: {message}")
        if len(report.errors) > shown:
            self.stdout.write(f"  ... and {len(report.errors) - shown} more lines refused")
