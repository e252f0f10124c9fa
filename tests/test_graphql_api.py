"""GraphQL endpoint hygiene: abuse limits, error masking, GET refused, schema export fresh."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from strawberry.printer import print_schema

from backend.schema import schema


def _nested_lead_query(depth: int) -> str:
    # Lead → activities → Activity → lead → ... : a cycle, so depth is unbounded without a limit.
    inner = "company"
    for _ in range(depth):
        inner = f"activities {{ edges {{ node {{ lead {{ {inner} }} }} }} }}"
    return f"query Deep {{ leads {{ edges {{ node {{ {inner} }} }} }} }}"


def test_over_deep_query_is_rejected_with_a_clear_error(graphql, token_a):
    _, body = graphql(_nested_lead_query(3), token=token_a)
    assert body.get("data") is None
    assert body["errors"][0]["message"] == (
        f"'Deep' exceeds maximum operation depth of {settings.GRAPHQL_MAX_DEPTH}"
    )


def test_over_aliased_query_is_rejected_with_a_clear_error(graphql, token_a):
    aliases = " ".join(f"a{i}: me {{ authKind }}" for i in range(settings.GRAPHQL_MAX_ALIASES + 1))
    _, body = graphql(f"{{ {aliases} }}", token=token_a)
    assert body.get("data") is None
    assert body["errors"][0]["message"] == (
        f"{settings.GRAPHQL_MAX_ALIASES + 1} aliases found. Allowed: {settings.GRAPHQL_MAX_ALIASES}"
    )


def test_query_within_limits_runs(graphql, token_a):
    aliases = " ".join(f"a{i}: me {{ authKind }}" for i in range(settings.GRAPHQL_MAX_ALIASES))
    _, body = graphql(f"{{ {aliases} }}", token=token_a)
    assert "errors" not in body
    assert body["data"]["a0"] == {"authKind": "token"}


def test_oversized_token_count_is_rejected(graphql, token_a):
    query = "{ me { " + " ".join(["authKind"] * settings.GRAPHQL_MAX_TOKENS) + " } }"
    _, body = graphql(query, token=token_a)
    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()


def test_page_size_above_the_maximum_is_a_clear_error(graphql, token_a):
    limit = settings.GRAPHQL_MAX_PAGE_SIZE
    _, body = graphql(f"{{ teams(first: {limit + 1}) {{ totalCount }} }}", token=token_a)
    assert body["errors"][0]["message"] == f"Argument 'first' cannot be higher than {limit}."


def test_field_suggestions_do_not_leak_the_schema(graphql, token_a):
    _, body = graphql("{ apiToken { id } }", token=token_a)
    message = body["errors"][0]["message"]
    assert "Did you mean" not in message
    assert "apiTokens" not in message


def test_malformed_global_id_is_a_clean_error_without_internals(graphql, tenant_a, admin_a):
    for bad in ["not-base64!!", "VGVhbTox", "QXBpVG9rZW46YWJj"]:  # junk, Team:1, ApiToken:abc
        _, body = graphql(
            "mutation($id: ID!) { revokeApiToken(id: $id) { errors { code field message } } }",
            {"id": bad},
            user=admin_a,
            tenant="acme",
        )
        text = str(body)
        assert "Traceback" not in text and "File " not in text and "strawberry" not in text
        if body.get("data"):
            assert body["data"]["revokeApiToken"]["errors"][0]["code"] == "NOT_FOUND"
        else:
            assert body["errors"][0]["message"] == "Invalid global ID."


def test_unexpected_exceptions_are_masked(graphql, tenant_a, admin_a, monkeypatch):
    from tenants import services

    def boom(**kwargs):
        raise RuntimeError("password=hunter2 at /srv/app/secret.py line 3")

    monkeypatch.setattr(services, "api_token_revoke", boom)
    token, _ = services.api_token_create(tenant=tenant_a, name="x", scopes=["kpis:read"])
    from strawberry import relay

    _, body = graphql(
        "mutation($id: ID!) { revokeApiToken(id: $id) { errors { code } } }",
        {"id": str(relay.GlobalID("ApiToken", str(token.pk)))},
        user=admin_a,
        tenant="acme",
    )
    assert body["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 22}],
            "path": ["revokeApiToken"],
            "extensions": {"code": "INTERNAL"},
        }
    ]


def test_queries_over_get_are_refused(client, token_a):
    response = client.get(
        "/graphql/", {"query": "{ me { authKind } }"}, HTTP_AUTHORIZATION=f"Bearer {token_a}"
    )
    assert response.status_code in (400, 405)


def test_malformed_json_body_is_a_client_error(client, token_a):
    response = client.post(
        "/graphql/",
        data="{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_a}",
    )
    assert response.status_code == 400


def test_committed_schema_export_is_fresh():
    committed = (Path(settings.BASE_DIR) / "schema.graphql").read_text()
    assert committed.strip() == print_schema(schema).strip(), (
        "schema.graphql is stale: run `make schema` and commit it."
    )


def test_a_repeated_document_is_validated_once(graphql, token_a, monkeypatch):
    # given a document this process has not validated yet (the alias makes it unique)
    import strawberry.schema.schema as strawberry_schema

    validated = []
    validate = strawberry_schema.validate

    def counting_validate(*args, **kwargs):
        validated.append(args[1])
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counting_validate)
    query = "{ validatedOnce: me { authKind } }"
    # when it is sent twice
    first = graphql(query, token=token_a)
    second = graphql(query, token=token_a)
    # then both run, and the second reuses the first validation (the depth and alias limits
    # keep the same rules from request to request, so the validation cache can hit)
    assert first == second == (200, {"data": {"validatedOnce": {"authKind": "token"}}})
    assert len(validated) == 1
