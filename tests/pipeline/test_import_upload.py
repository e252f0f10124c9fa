"""importCrmFile: a CRM export uploaded over GraphQL (multipart request spec) runs the
import_crm service: dry run, real run, re-run unchanged; bad uploads and bad multipart
bodies get typed errors and store nothing; scopes, CSRF and tenant isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from pipeline.imports.models import ImportPreset
from pipeline.models import Lead
from tenants import members, services
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory
from tests.pipeline import test_import_crm
from tests.pipeline.test_import_crm import SAMPLES, leads_by_id, nothing_stored

pytestmark = pytest.mark.django_db(transaction=True)
reps = test_import_crm.reps  # the fixture: tenant A's reps, as the exports name them

IMPORT = """mutation Import($file: Upload!, $preset: String!, $dryRun: Boolean!,
    $encoding: String! = "utf-8-sig") {
  importCrmFile(file: $file, preset: $preset, dryRun: $dryRun, encoding: $encoding) {
    fileName preset dryRun lines skipped replayedChunks
    leads { created updated unchanged rejected }
    leadStageChanges { created updated unchanged rejected }
    lineErrorCount lineErrors { line message }
    errors { code field message }
  }
}"""
CONTACTS = (SAMPLES / "hubspot-contacts.csv").read_bytes()


def upload(
    client: Client,
    content: bytes = CONTACTS,
    *,
    name: str = "hubspot-contacts.csv",
    preset: str = "hubspot-contacts",
    dry_run: bool = False,
    token: str | None = None,
    encoding: str | None = None,
    **extra: Any,
) -> tuple[int, dict[str, Any]]:
    variables: dict[str, Any] = {"file": None, "preset": preset, "dryRun": dry_run}
    if encoding is not None:
        variables["encoding"] = encoding
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    response = client.post(
        "/graphql/",
        data={
            "operations": json.dumps({"query": IMPORT, "variables": variables}),
            "map": json.dumps({"0": ["variables.file"]}),
            "0": SimpleUploadedFile(name, content, content_type="text/csv"),
        },
        **extra,
    )
    return response.status_code, response.json()


def result(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors") is None, body
    return body["data"]["importCrmFile"]


def error(body: dict[str, Any]) -> tuple[str, str | None, str]:
    errors = result(body)["errors"]
    assert len(errors) == 1, errors
    return errors[0]["code"], errors[0]["field"], errors[0]["message"]


LINE_ERRORS = [
    {
        "line": 6,
        "message": "Create Date: '2026/13/45 10:00' is not a date and time (e.g. 2026-11-02 "
        "09:30, 2026/11/02 9:30 or 2026-11-02T00:30:00Z).",
    },
    {
        "line": 7,
        "message": "Contact owner: no member is named '木村 健'; map it to a member's e-mail in "
        "the preset's owners.",
    },
]


def test_dry_run_then_import_then_unchanged(
    client: Client, tenant_a: Any, reps: Any, token_a: str
) -> None:
    # when the export is uploaded as a dry run
    status, body = upload(client, dry_run=True, token=token_a)
    dry = result(body)
    # then it reports what the command reports, and nothing was written
    assert status == 200
    assert dry == {
        "fileName": "hubspot-contacts.csv",
        "preset": "hubspot-contacts",
        "dryRun": True,
        "lines": 6,
        "skipped": 0,
        "replayedChunks": 0,
        "leads": {"created": 4, "updated": 0, "unchanged": 0, "rejected": 2},
        "leadStageChanges": {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0},
        "lineErrorCount": 2,
        "lineErrors": LINE_ERRORS,
        "errors": [],
    }
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)
    # when it is uploaded for real, then again
    first = result(upload(client, token=token_a)[1])
    again = result(upload(client, token=token_a)[1])
    # then the import did what the dry run said, and the second changed nothing
    assert first == {**dry, "dryRun": False}
    assert again["replayedChunks"] == 1
    assert again["leads"] == {"created": 0, "updated": 0, "unchanged": 4, "rejected": 2}
    assert again["leadStageChanges"] == {"created": 0, "updated": 0, "unchanged": 3, "rejected": 0}
    assert again["lineErrors"] == LINE_ERRORS
    leads = leads_by_id(tenant_a)
    assert sorted(leads) == ["1001", "1002", "1003", "1004"]
    assert leads["1001"].owner_id == reps["yamada"].pk


def test_the_same_file_through_the_command_is_unchanged(
    client: Client, tenant_a: Any, reps: Any, token_a: str
) -> None:
    # the upload and the command key their chunks alike: either re-runs the other's import
    result(upload(client, token=token_a)[1])
    out = test_import_crm.run("hubspot-contacts")
    assert "lead: 0 created, 0 updated, 4 unchanged, 2 refused" in out


def test_a_non_utf8_file_is_refused_with_the_encoding_hint_then_imports_with_it(
    client: Client, tenant_a: Any, reps: Any, token_a: str
) -> None:
    cp932 = CONTACTS.decode("utf-8").encode("cp932")
    code, field, message = error(upload(client, cp932, token=token_a)[1])
    assert (code, field) == ("VALIDATION", "file")
    assert message == (
        "Cannot read hubspot-contacts.csv: the file is not in utf-8-sig: pass encoding "
        '(e.g. encoding: "cp932").'
    )
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)
    imported = result(upload(client, cp932, token=token_a, encoding="cp932")[1])
    assert imported["leads"]["created"] == 4


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("contacts.xlsx", CONTACTS, "contacts.xlsx is not a CSV file"),
        ("contacts.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "not a CSV text file"),
        ("contacts.csv", b"a,b\x00c\n", "not a CSV text file"),
        ("contacts.csv", b"", "contacts.csv is empty."),
        ("../../etc/contacts.csv", b"Record ID\n", "Missing columns"),
    ],
)
def test_bad_files_are_refused_with_a_typed_error(
    client: Client, tenant_a: Any, token_a: str, name: str, content: bytes, message: str
) -> None:
    status, body = upload(client, content, name=name, token=token_a)
    code, field, text = error(body)
    assert (status, code, field) == (200, "VALIDATION", "file"), text
    assert message in text
    assert "etc" not in text  # a client's path is never used nor echoed
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)


def test_bad_arguments_are_refused_with_a_typed_error(
    client: Client, tenant_a: Any, token_a: str
) -> None:
    assert error(upload(client, preset="nope", token=token_a)[1])[:2] == ("VALIDATION", "preset")
    assert error(upload(client, encoding="klingon", token=token_a)[1])[:2] == (
        "VALIDATION",
        "encoding",
    )
    assert error(upload(client, encoding="utf\x00-8", token=token_a)[1])[:2] == (
        "VALIDATION",
        "encoding",
    )
    with override_settings(CRM_IMPORT_MAX_UPLOAD_BYTES=100):
        code, field, text = error(upload(client, token=token_a)[1])
    assert (code, field) == ("VALIDATION", "file") and "over 100 bytes" in text
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)


def _post(client: Client, token: str, data: Any, **extra: Any) -> tuple[int, dict[str, Any]]:
    response = client.post("/graphql/", data=data, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)
    return response.status_code, response.json()


def _refusal(status_body: tuple[int, dict[str, Any]]) -> tuple[int, str, str]:
    status, body = status_body
    assert body["data"] is None
    (only,) = body["errors"]
    return status, only["extensions"]["code"], only["message"]


def test_malformed_multipart_bodies_get_a_typed_400(
    client: Client, tenant_a: Any, token_a: str
) -> None:
    operations = json.dumps(
        {"query": IMPORT, "variables": {"file": None, "preset": "x", "dryRun": True}}
    )
    file = SimpleUploadedFile("a.csv", b"x\n")
    cases = [
        ({"map": "{}", "0": file}, "needs an `operations` field and a `map` field"),
        ({"operations": operations, "map": "nope", "0": file}, "`map` field is not valid JSON"),
        ({"operations": operations, "map": "[1]", "0": file}, "must be a JSON object"),
        ({"operations": operations, "map": '{"1": ["variables.file"]}', "0": file}, "missing"),
        ({"operations": operations, "map": "{}", "0": file}, "not in `map`"),
        ({"operations": operations, "map": '{"0": ["query"]}', "0": file}, "must name a variable"),
        (
            {"operations": operations, "map": '{"0": ["variables.x.y"]}', "0": file},
            "does not point",
        ),
        ({"operations": "[]", "map": '{"0": ["variables.file"]}', "0": file}, "batching is off"),
        (
            {
                "operations": operations,
                "map": '{"0": ["variables.file"], "1": ["variables.file"]}',
                "0": file,
                "1": SimpleUploadedFile("b.csv", b"x\n"),
            },
            "at most 1 file",
        ),
    ]
    for data, message in cases:
        file.seek(0)
        status, code, text = _refusal(_post(client, token_a, data))
        assert (status, code) == (400, "VALIDATION"), (text, message)
        assert message in text, (text, message)
    # a body that is not multipart at all, and one without a boundary
    for content_type, body in (
        ("multipart/form-data; boundary=XYZ", b"--XYZ\r\nnot a part"),
        ("multipart/form-data", b"--XYZ--"),
    ):
        status, code, text = _refusal(_post(client, token_a, body, content_type=content_type))
        assert (status, code) == (400, "VALIDATION"), text
    # other content types are still refused
    status, code, _ = _refusal(_post(client, token_a, "a,b", content_type="text/csv"))
    assert (status, code) == (415, "VALIDATION")
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)


def test_an_upload_over_the_limit_is_refused_before_it_is_read(
    client: Client, tenant_a: Any, token_a: str
) -> None:
    with override_settings(CRM_IMPORT_MAX_UPLOAD_BYTES=10, DATA_UPLOAD_MAX_MEMORY_SIZE=10):
        status, code, text = _refusal(upload(client, token=token_a))
    assert (status, code) == (413, "BATCH_TOO_LARGE")
    assert "split the file" in text


def test_only_callers_who_may_write_records_can_import(
    client: Client, tenant_a: Any, reps: Any
) -> None:
    # an anonymous upload is refused before its body is read
    status, body = upload(client)
    assert (status, body["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")
    # a read-only token and a viewer are refused, and nothing is stored
    _, reader = services.api_token_create(tenant=tenant_a, name="bi", scopes=["kpis:read"])
    assert error(upload(client, token=reader)[1])[0] == "PERMISSION_DENIED"
    viewer = UserFactory(username="viewer")
    members.membership_add(tenant=tenant_a, user=viewer, role=Role.VIEWER)
    session = Client(enforce_csrf_checks=True)
    session.force_login(viewer)
    session.get("/app/")  # sets the csrftoken cookie
    csrf = {"HTTP_X_CSRFTOKEN": session.cookies["csrftoken"].value}
    assert error(upload(session, **csrf)[1])[0] == "PERMISSION_DENIED"
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)
    # a rep's browser session imports, with the CSRF token, and not without it
    rep = reps["yamada"].user
    session.force_login(rep)
    session.get("/app/")
    csrf = {"HTTP_X_CSRFTOKEN": session.cookies["csrftoken"].value}
    status, body = upload(session)
    assert (status, body["errors"][0]["extensions"]["code"]) == (403, "PERMISSION_DENIED")
    assert nothing_stored(tenant_a) == (0, 0, 0, 0, 0, 0, 0, 0)
    assert result(upload(session, **csrf)[1])["leads"]["created"] == 4


def test_tenant_b_imports_into_its_own_workspace_only(
    client: Client, tenant_a: Any, tenant_b: Any, reps: Any, token_a: str, token_b: str
) -> None:
    # given tenant A imported the file, and has its own preset
    result(upload(client, token=token_a)[1])
    with tenant_context(tenant_a):
        ImportPreset.objects.create(tenant=tenant_a, name="acme-contacts", kind="hubspot-contacts")
    before = {key: vars(lead) for key, lead in leads_by_id(tenant_a).items()}
    # when tenant B uploads the same file, and names A's preset
    imported = result(upload(client, token=token_b)[1])
    code, field, _ = error(upload(client, preset="acme-contacts", token=token_b)[1])
    # then B's import is its own (nothing replayed from A's), A's preset is unknown to B,
    # and A's rows are untouched
    assert imported["replayedChunks"] == 0
    # B has no members: only the line naming no owner is stored
    assert imported["leads"]["created"] == 1
    assert (code, field) == ("VALIDATION", "preset")
    after = {key: vars(lead) for key, lead in leads_by_id(tenant_a).items()}
    assert after.keys() == before.keys()
    assert all(after[k]["updated_at"] == before[k]["updated_at"] for k in after)
    with tenant_context(tenant_b):
        assert Lead.objects.count() == 1
