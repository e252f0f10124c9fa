"""`importCrmFile`: a CRM export uploaded with the GraphQL multipart request spec, imported
with a preset by the same service as `manage.py import_crm` (needs records:write)."""

from __future__ import annotations

import strawberry
from strawberry.file_uploads import Upload

from pipeline.graphql.ingestion import IngestCounts
from pipeline.imports.service import ImportReport
from pipeline.imports.uploads import crm_upload_import, upload_file_name
from pipeline.ingestion import BATCH_KEYS, IngestKind
from tenants.errors import ValidationFailed
from tenants.graphql.context import Info
from tenants.graphql.operations import MutationPayload, mutation
from tenants.scopes import Scope

# A file with many bad lines lists the first ones; the counts cover them all.
LINE_ERRORS_SHOWN = 500


@strawberry.type(description="A line of the file that was not imported, and why.")
class CrmImportLineError:
    line: int = strawberry.field(description="The line number in the file (the header is 1).")
    message: str


@strawberry.type(description="What an import did, or would do (dry run), per kind of record.")
class CrmImportPayload(MutationPayload):
    file_name: str | None = None
    preset: str | None = None
    dry_run: bool = False
    lines: int = strawberry.field(default=0, description="Data lines read (blank ones aside).")
    skipped: int = strawberry.field(
        default=0, description="Lines that are not records of this preset (not a stage change)."
    )
    replayed_chunks: int = strawberry.field(
        default=0,
        description="Chunks of this file imported before with this preset: nothing written.",
    )
    leads: IngestCounts | None = None
    activities: IngestCounts | None = None
    deals: IngestCounts | None = None
    lead_stage_changes: IngestCounts | None = None
    deal_stage_changes: IngestCounts | None = None
    line_error_count: int = 0
    line_errors: list[CrmImportLineError] = strawberry.field(
        default_factory=list, description=f"The first {LINE_ERRORS_SHOWN} refused lines."
    )


def _payload(name: str, report: ImportReport) -> CrmImportPayload:
    counts = {
        BATCH_KEYS[kind]: IngestCounts(**vars(report.counts[kind]))
        for kind in IngestKind
        if kind in report.counts
    }
    return CrmImportPayload(
        file_name=name,
        preset=report.preset,
        dry_run=report.dry_run,
        lines=report.lines,
        skipped=report.skipped,
        replayed_chunks=report.replayed_chunks,
        **counts,
        line_error_count=len(report.errors),
        line_errors=[
            CrmImportLineError(line=line, message=message)
            for line, message in report.errors[:LINE_ERRORS_SHOWN]
        ],
    )


@strawberry.type
class CrmImportMutation:
    @mutation(
        scope=Scope.RECORDS_WRITE,
        description=(
            "Import a HubSpot or Salesforce CSV export with a preset, as manage.py import_crm "
            "does (needs records:write). Send it as a multipart request (GraphQL multipart "
            "request spec) with the file in `file`. dryRun: report only, write nothing. "
            "Re-sending the same file with the same preset changes nothing."
        ),
    )
    def import_crm_file(
        self,
        info: Info,
        file: Upload,
        preset: str,
        dry_run: bool = False,
        encoding: str = "utf-8-sig",
        time_zone: str | None = None,
    ) -> CrmImportPayload:
        tenant = info.context.require_tenant()
        if not hasattr(file, "chunks"):
            # A client that put a string where the spec puts the file.
            raise ValidationFailed(
                "Send the file as a multipart request (GraphQL multipart request spec).",
                field="file",
            )
        report = crm_upload_import(
            tenant=tenant,
            upload=file,
            preset=preset,
            dry_run=dry_run,
            encoding=encoding,
            time_zone=time_zone,
        )
        return _payload(upload_file_name(file), report)
