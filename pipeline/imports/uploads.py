"""`crm_upload_import`: a CRM export uploaded over GraphQL (multipart), checked as a file
(size, type, encoding) and imported by the same service as `manage.py import_crm`."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path, PurePath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from pipeline.imports.service import ImportReport, crm_file_import
from tenants.bounds import text_check
from tenants.errors import ValidationFailed
from tenants.models import Tenant

# The hint the command gives (--encoding), in the API's words.
ENCODING_HINT = 'the file is not in {encoding}: pass encoding (e.g. encoding: "cp932")'
_EXTENSIONS = (".csv", ".txt")
# What spreadsheets and archives begin with: an export saved as a workbook, not as CSV.
_BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x1f\x8b")
_SNIFF_BYTES = 8192


def crm_upload_import(
    *,
    tenant: Tenant,
    upload: UploadedFile,
    preset: str,
    dry_run: bool = False,
    encoding: str = "utf-8-sig",
    time_zone: str | None = None,
) -> ImportReport:
    """Import an uploaded CRM export into `tenant` with `preset`, as import_crm does.

    Raises ValidationFailed (field `file`, `encoding`, `preset` or `timeZone`) for a file
    that is too large, not a CSV text file or not in `encoding`, and whatever the import
    refuses for the whole file; nothing is written then.
    """
    text_check(preset, field="preset", max_length=100, required=True)
    text_check(encoding, field="encoding", max_length=40, required=True)
    if time_zone is not None:
        text_check(time_zone, field="timeZone", max_length=64, required=True)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValidationFailed(
            f"Unknown encoding {encoding!r} (e.g. utf-8, cp932).", field="encoding"
        ) from None
    name = upload_file_name(upload)
    limit = settings.CRM_IMPORT_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ValidationFailed(f"{name} is over {limit} bytes; split the export.", field="file")
    with tempfile.NamedTemporaryFile(suffix=".csv") as copy:
        _copy_checked(upload, Path(copy.name), name=name, encoding=encoding, limit=limit)
        return crm_file_import(
            tenant=tenant,
            preset=preset,
            path=Path(copy.name),
            dry_run=dry_run,
            encoding=encoding,
            time_zone=time_zone,
            name=name,
            encoding_hint=ENCODING_HINT,
        )


def upload_file_name(upload: UploadedFile) -> str:
    """The upload's base name, or ValidationFailed when it is not a CSV file's."""
    # Browsers send the base name; another client may send a path, which we never use.
    name = PurePath((upload.name or "upload.csv").replace("\\", "/")).name or "upload.csv"
    text_check(name, field="file", max_length=255, what="the file name")
    if not name.lower().endswith(_EXTENSIONS):
        raise ValidationFailed(
            f"{name} is not a CSV file: export the CRM view as CSV (.csv).", field="file"
        )
    return name


def _copy_checked(
    upload: UploadedFile, target: Path, *, name: str, encoding: str, limit: int
) -> None:
    """Copy the upload to `target`, refusing a binary file or one not in `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    written = 0
    hint = ENCODING_HINT.format(encoding=encoding)
    upload.seek(0)
    with target.open("wb") as handle:
        for number, block in enumerate(upload.chunks()):
            if number == 0 and _looks_binary(block[:_SNIFF_BYTES]):
                raise ValidationFailed(
                    f"{name} is not a CSV text file (a spreadsheet or an archive?): export "
                    "the CRM view as CSV.",
                    field="file",
                )
            written += len(block)
            if written > limit:
                raise ValidationFailed(
                    f"{name} is over {limit} bytes; split the export.", field="file"
                )
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                raise ValidationFailed(f"Cannot read {name}: {hint}.", field="file") from None
            handle.write(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValidationFailed(f"Cannot read {name}: {hint}.", field="file") from None
    if written == 0:
        raise ValidationFailed(f"{name} is empty.", field="file")


def _looks_binary(head: bytes) -> bool:
    # NUL never appears in a CSV export in an 8-bit encoding; UTF-16 files do have them but
    # begin with a byte order mark, and the encoding check then judges them.
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return head.startswith(_BINARY_SIGNATURES) or b"\x00" in head
