"""The transport of /graphql/ (issue 15 item 3): whatever the body, headers or method, the
answer is a GraphQL-shaped JSON error with a typed code and a fitting HTTP status."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from tenants import members
from tenants.context import tenant_context
from tenants.models import Team
from tenants.scopes import Role
from tests.factories import UserFactory

ME = json.dumps({"query": "{ me { authKind } }"})
TEAM = json.dumps({"query": 'mutation { createTeam(input: {name: "Ops"}) { errors { code } } }'})
SIGN_IN = "Sign in or send 'Authorization: Bearer <API token>'."
ONE = "Send one operation per request (batching is off)."
NO_QUERY = "The request body needs a `query` string."
TOO_DEEP = "Syntax Error: Document is nested too deeply. Parsing aborted."
TOO_MANY = "Syntax Error: Document contains more than 5000 tokens. Parsing aborted."
CYCLE = "Cannot spread fragment 'A' within itself via 'B'."
VARS_LIST = '{"query": "{ me { authKind } }", "variables": [1]}'


def _error(response: Any) -> tuple[int, str, str]:
    """(status, code, message) of a refusal, checking that it is GraphQL-shaped JSON."""
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = json.loads(response.content)
    assert body["data"] is None
    (error,) = body["errors"]
    return response.status_code, error["extensions"]["code"], error["message"]


BODIES = [
    ("100,000 [", "[" * 100_000, 400, "VALIDATION", "The request body is nested too deeply."),
    (
        "deep variables",
        '{"query": "{ me { authKind } }", "variables": {"a": ' + "[" * 70 + "]" * 70 + "}}",
        400,
        "VALIDATION",
        "The request body is nested too deeply.",
    ),
    ("invalid JSON", "{nope", 400, "VALIDATION", "The request body is not valid JSON."),
    (
        "invalid UTF-8",
        b'{"query": "\xff{ me { authKind } }"}',
        400,
        "VALIDATION",
        "The request body is not valid UTF-8.",
    ),
    ("array", "[" + ME + "]", 400, "VALIDATION", ONE),
    ("string", '"q"', 400, "VALIDATION", None),
    ("number", "5", 400, "VALIDATION", None),
    ("null", "null", 400, "VALIDATION", None),
    ("query a number", '{"query": 5}', 400, "VALIDATION", NO_QUERY),
    ("query missing", "{}", 400, "VALIDATION", NO_QUERY),
    ("variables a list", VARS_LIST, 400, "VALIDATION", None),
    (
        "operationName a number",
        '{"query": "query A { me { authKind } }", "operationName": 5}',
        400,
        "VALIDATION",
        "`operationName` must be a string or null.",
    ),
    (
        "operationName unknown",
        '{"query": "query A { me { authKind } }", "operationName": "B"}',
        400,
        "VALIDATION",
        'Unknown operation named "B".',
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [case[1:] for case in BODIES],
    ids=[case[0] for case in BODIES],
)
def test_malformed_bodies_are_json_client_errors(
    client: Client, token_a: str, body: Any, status: int, code: str, message: str | None
) -> None:
    # when
    response = client.post(
        "/graphql/", data=body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_a}",
    )  # fmt: skip
    # then
    got = _error(response)
    assert got[:2] == (status, code)
    if message is not None:
        assert got[2] == message


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", ""])
def test_other_content_types_are_415(client: Client, token_a: str, content_type: str) -> None:
    response = client.post(
        "/graphql/", data=ME, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token_a}"
    )
    assert _error(response) == (
        415,
        "VALIDATION",
        "Send the request as 'Content-Type: application/json' (or multipart/form-data for a "
        "file upload, following the GraphQL multipart request spec).",
    )


def test_multipart_is_only_the_upload_spec(client: Client, token_a: str) -> None:
    # a JSON body sent as multipart has none of the spec's parts (tests/pipeline/
    # test_import_upload.py covers the spec's own mistakes)
    response = client.post(
        "/graphql/",
        data=ME,
        content_type="multipart/form-data; boundary=x",
        HTTP_AUTHORIZATION=f"Bearer {token_a}",
    )
    assert _error(response) == (
        400,
        "VALIDATION",
        "A multipart request needs an `operations` field and a `map` field.",
    )


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_methods_other_than_post_are_405(client: Client, token_a: str, method: str) -> None:
    response = getattr(client, method)("/graphql/?query={me{authKind}}", **{
        "HTTP_AUTHORIZATION": f"Bearer {token_a}"
    })  # fmt: skip
    assert _error(response)[:2] == (405, "VALIDATION")
    assert response["Allow"] == "POST"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_limit_is_413(client: Client, token_a: str) -> None:
    body = json.dumps({"query": "{ me { authKind } }", "variables": {"x": "a" * 2000}})
    response = client.post(
        "/graphql/", data=body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_a}",
    )  # fmt: skip
    assert _error(response) == (
        413,
        "BATCH_TOO_LARGE",
        "The request body is over 1000 bytes; split the batch into smaller requests.",
    )


def test_the_path_without_slash_is_the_api_too(client: Client, token_a: str) -> None:
    response = client.post(
        "/graphql", data=ME, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token_a}"
    )
    assert response.json() == {"data": {"me": {"authKind": "token"}}}


def test_two_operations_without_a_name_run_the_first(graphql: Any, token_a: str) -> None:
    # NOTE: Strawberry's choice (the spec would refuse); never an internal error.
    query = "query A { me { authKind } } query B { me { scopes } }"
    assert graphql(query, token=token_a) == (200, {"data": {"me": {"authKind": "token"}}})


def test_unknown_urls_are_json_404(client: Client, db: None) -> None:
    # NOTE: "/" leads to the web console (tests/console/test_pages.py).
    for url in ("/graphql/nope", "/api/v1/leads", "/nope"):
        assert _error(client.get(url)) == (
            404,
            "NOT_FOUND",
            "Not found: the API is POST /graphql/.",
        )


def test_a_request_without_credentials_is_401(client: Client, tenant_a: Any) -> None:
    # given no Authorization header and no session, with and without a tenant header
    for headers in ({}, {"HTTP_X_TENANT": "acme"}):
        # when
        response = Client(enforce_csrf_checks=True).post(
            "/graphql/", data=TEAM, content_type="application/json", **headers
        )
        # then
        assert _error(response) == (401, "UNAUTHENTICATED", SIGN_IN)
    with tenant_context(tenant_a):
        assert Team.objects.count() == 0


def test_a_session_without_csrf_token_is_a_json_403(tenant_a: Any) -> None:
    # given a signed-in admin whose request lacks the CSRF token
    user = UserFactory(username="ann")
    members.membership_add(tenant=tenant_a, user=user, role=Role.ADMIN)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    # when
    response = browser.post("/graphql/", data=TEAM, content_type="application/json")
    # then
    status, code, message = _error(response)
    assert (status, code) == (403, "PERMISSION_DENIED")
    assert message.startswith("CSRF check failed")
    with tenant_context(tenant_a):
        assert Team.objects.count() == 0


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer", "Use 'Authorization: Bearer <API token>'."),
        ("Basic eHl6", "Use 'Authorization: Bearer <API token>'."),
        ("Bearer " + "a" * 10_000, "Malformed API token."),
        ("Bearer kpi_a\x00b", "Malformed API token."),
        ("Bearer kpi_ü", "Malformed API token."),
    ],
    ids=["bearer-alone", "basic", "10-kb", "nul", "non-ascii"],
)
def test_malformed_authorization_is_401(
    client: Client, tenant_a: Any, authorization: str, message: str
) -> None:
    response = client.post(
        "/graphql/", data=ME, content_type="application/json", HTTP_AUTHORIZATION=authorization
    )
    assert _error(response) == (401, "TOKEN_INVALID", message)


@pytest.mark.parametrize("header", ["a\x00", "x" * 64], ids=["nul", "too-long"])
def test_a_bad_tenant_header_is_a_400(client: Client, tenant_a: Any, header: str) -> None:
    user = UserFactory(username="ben")
    members.membership_add(tenant=tenant_a, user=user, role=Role.ADMIN)
    client.force_login(user)
    response = client.post(
        "/graphql/", data=ME, content_type="application/json", HTTP_X_TENANT=header
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "X-Tenant"}


QUERY_ABUSE = [
    ("deep document", "{ me " + "{ me " * 2000 + "}" * 2001, TOO_DEEP),
    ("1 MB of tokens", "{ " + "me { authKind } " * 60_000 + "}", TOO_MANY),
    ("directive spam", "{ me " + "@include(if: true) " * 1000 + "{ authKind } }", TOO_MANY),
    ("fragment cycle", "{ me { ...A } } fragment A on Me { ...B } fragment B on Me { ...A }",
     CYCLE),
    ("introspection", "{ __schema { types { name } } }", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"), [c[1:] for c in QUERY_ABUSE], ids=[c[0] for c in QUERY_ABUSE]
)
def test_query_abuse_is_a_typed_error(
    graphql: Any, token_a: str, query: str, message: str | None
) -> None:
    status, body = graphql(query, token=token_a)
    assert status in (200, 400)
    assert body["data"] is None
    assert {error["extensions"]["code"] for error in body["errors"]} == {"VALIDATION"}
    if message is not None:
        assert body["errors"][0]["message"] == message


def test_an_unexpected_error_in_the_view_is_a_json_500_and_rolls_back(
    client: Client, token_a: str, tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a view that breaks after a write, outside the GraphQL execution
    from backend.views import TenantGraphQLView

    original = TenantGraphQLView.process_result

    def broken(self: Any, request: Any, result: Any) -> Any:
        original(self, request, result)
        raise RuntimeError("boom")

    monkeypatch.setattr(TenantGraphQLView, "process_result", broken)
    # when
    response = client.post(
        "/graphql/", data=TEAM, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {_config_token(tenant_a)}",
    )  # fmt: skip
    # then
    assert _error(response) == (500, "INTERNAL", "Unexpected error.")
    with tenant_context(tenant_a):
        assert Team.objects.count() == 0


def _config_token(tenant: Any) -> str:
    from tenants import services

    return services.api_token_create(tenant=tenant, name="cfg", scopes=["config:write"])[1]
