"""API token lifecycle: create, use, expire, revoke, wrong secret, other tenant's token."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tenants import cross_tenant, members, services, tokens
from tenants.context import tenant_context
from tenants.errors import ErrorCode, PublicError, ValidationFailed
from tenants.models import ApiToken, Membership, Team
from tests.factories import TeamFactory

ME = "{ me { authKind tokenName tenant { slug } scopes } }"


def test_created_token_is_shown_once_and_only_its_hash_is_stored(tenant_a):
    # when
    token, secret = services.api_token_create(
        tenant=tenant_a, name="dialer", scopes=["records:write"]
    )
    # then
    assert secret.startswith(f"kpi_{token.key_id}_")
    with tenant_context(tenant_a):
        stored = ApiToken.objects.get(pk=token.pk)
    assert secret not in (stored.secret_hash, stored.key_id)
    assert stored.secret_hash == tokens.hash_secret(secret.split("_", 2)[2])
    assert stored.scopes == ["records:write"]


def test_token_authenticates_its_tenant_with_its_scopes(graphql, tenant_a, token_a):
    status, body = graphql(ME, token=token_a)
    assert status == 200
    assert body["data"]["me"] == {
        "authKind": "token",
        "tokenName": "partner",
        "tenant": {"slug": "acme"},
        "scopes": ["kpis:read", "records:read", "records:write"],
    }


def test_token_use_records_last_used_time(graphql, tenant_a, token_a):
    graphql(ME, token=token_a)
    with tenant_context(tenant_a):
        assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"), "TOKEN_INVALID"),
        (lambda s: "kpi_000000000000_" + s.split("_", 2)[2], "TOKEN_INVALID"),
        (lambda s: "not-a-token", "TOKEN_INVALID"),
    ],
    ids=["wrong-secret", "unknown-key", "malformed"],
)
def test_wrong_or_malformed_secret_is_refused(graphql, token_a, mangle, code):
    status, body = graphql(ME, token=mangle(token_a))
    assert status == 401
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code


def test_non_bearer_authorization_is_refused(client, token_a):
    response = client.post(
        "/graphql/",
        {"query": ME},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token_a}",
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"


def test_expired_token_is_refused(graphql, tenant_a):
    token, secret = services.api_token_create(
        tenant=tenant_a,
        name="short",
        scopes=["kpis:read"],
        expires_at=timezone.now() + dt.timedelta(minutes=5),
    )
    with tenant_context(tenant_a):
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
    status, body = graphql(ME, token=secret)
    assert status == 401
    assert body["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"


def test_revoked_token_is_refused_and_revoking_twice_keeps_the_first_time(graphql, tenant_a):
    token, secret = services.api_token_create(tenant=tenant_a, name="x", scopes=["kpis:read"])
    first = services.api_token_revoke(tenant=tenant_a, token_id=token.pk).revoked_at
    second = services.api_token_revoke(tenant=tenant_a, token_id=token.pk).revoked_at
    assert first == second
    status, body = graphql(ME, token=secret)
    assert status == 401
    assert body["errors"][0]["extensions"]["code"] == "TOKEN_REVOKED"


def test_token_keeps_working_after_its_creator_leaves(graphql, tenant_a, admin_a):
    # given a token created by a member
    _, secret = services.api_token_create(
        tenant=tenant_a, name="sfa", scopes=["records:read"], created_by=admin_a
    )
    # when the member leaves the tenant and the account is deleted
    with tenant_context(tenant_a):
        Membership.objects.filter(user=admin_a).delete()
    # Deleting an account touches rows in every tenant it created tokens in (SET NULL).
    cross_tenant.user_delete(user=admin_a)
    # then the token still works, and who created it is still known
    status, body = graphql(ME, token=secret)
    assert status == 200
    assert body["data"]["me"]["tenant"] == {"slug": "acme"}
    with tenant_context(tenant_a):
        assert ApiToken.objects.get().created_by_label == "alice"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "scopes": ["kpis:read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": ["tokens:manage"]}, "scopes"),
        (
            {
                "name": "x",
                "scopes": ["kpis:read"],
                "expires_at": timezone.now() - dt.timedelta(days=1),
            },
            "expiresAt",
        ),
    ],
)
def test_invalid_token_input_is_refused_and_creates_nothing(tenant_a, kwargs, field):
    with pytest.raises(ValidationFailed) as excinfo:
        services.api_token_create(tenant=tenant_a, **kwargs)
    assert excinfo.value.field == field
    with tenant_context(tenant_a):
        assert ApiToken.objects.count() == 0


def test_token_of_tenant_b_never_sees_tenant_a(graphql, tenant_a, tenant_b, token_b):
    # given tenant A's data
    TeamFactory(tenant=tenant_a, name="A team")
    # when tenant B's token reads
    status, body = graphql(
        "{ tenant { slug } teams { totalCount edges { node { name } } } }", token=token_b
    )
    # then it sees its own tenant only
    assert status == 200
    assert body["data"]["tenant"] == {"slug": "globex"}
    assert body["data"]["teams"] == {"totalCount": 0, "edges": []}


def test_token_of_tenant_b_cannot_revoke_tenant_a_token(graphql, tenant_a, tenant_b):
    # given an admin of B and a token of A
    from tests.factories import UserFactory

    bob = UserFactory(username="bob")
    members.membership_add(tenant=tenant_b, user=bob, role="admin")
    token_a, _ = services.api_token_create(tenant=tenant_a, name="a", scopes=["kpis:read"])
    from strawberry import relay

    global_id = str(relay.GlobalID("ApiToken", str(token_a.pk)))
    # when B's admin revokes A's token by its global id
    _status, body = graphql(
        "mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { id } errors { code field } } }",
        {"id": global_id},
        user=bob,
        tenant="globex",
    )
    # then it is "not found", and nothing changed
    assert body["data"]["revokeApiToken"] == {
        "apiToken": None,
        "errors": [{"code": "NOT_FOUND", "field": "id"}],
    }
    with tenant_context(tenant_a):
        assert ApiToken.objects.get().revoked_at is None


def test_admin_creates_and_revokes_tokens_over_graphql(graphql, tenant_a, admin_a):
    # when
    _status, body = graphql(
        """mutation { createApiToken(input: {name: "ma", scopes: ["records:write"]}) {
            secret apiToken { id name scopes isActive prefix } errors { code } } }""",
        user=admin_a,
        tenant="acme",
    )
    created = body["data"]["createApiToken"]
    assert created["errors"] == []
    assert created["secret"].startswith(created["apiToken"]["prefix"] + "_")
    # the new secret works
    assert graphql(ME, token=created["secret"])[0] == 200
    # listing never shows a secret
    _, listing = graphql(
        "{ apiTokens { edges { node { name prefix } } } }", user=admin_a, tenant="acme"
    )
    assert listing["data"]["apiTokens"]["edges"] == [
        {"node": {"name": "ma", "prefix": created["apiToken"]["prefix"]}}
    ]
    # when revoked
    _, revoked = graphql(
        "mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { isActive } errors { code } } }",
        {"id": created["apiToken"]["id"]},
        user=admin_a,
        tenant="acme",
    )
    assert revoked["data"]["revokeApiToken"] == {"apiToken": {"isActive": False}, "errors": []}
    assert graphql(ME, token=created["secret"])[0] == 401


def test_token_cannot_manage_tokens(graphql, tenant_a, token_a):
    _, body = graphql(
        'mutation { createApiToken(input: {name: "x", scopes: ["kpis:read"]}) '
        "{ secret errors { code } } }",
        token=token_a,
    )
    assert body["data"]["createApiToken"] == {
        "secret": None,
        "errors": [{"code": "PERMISSION_DENIED"}],
    }
    with tenant_context(tenant_a):
        assert ApiToken.objects.count() == 1


def test_invalid_scope_over_graphql_is_a_typed_validation_error(graphql, tenant_a, admin_a):
    _, body = graphql(
        'mutation { createApiToken(input: {name: "x", scopes: ["everything"]}) '
        "{ secret errors { code field message } } }",
        user=admin_a,
        tenant="acme",
    )
    error = body["data"]["createApiToken"]["errors"][0]
    assert (error["code"], error["field"]) == ("VALIDATION", "scopes")
    assert "everything" in error["message"]


def test_management_commands_create_and_revoke(tenant_a, capsys):
    from django.core.management import call_command

    call_command("create_api_token", tenant="acme", name="cli", scopes=["kpis:read"])
    secret = capsys.readouterr().out.strip()
    token = services.api_token_authenticate(raw=secret)
    call_command("revoke_api_token", token.prefix)
    with pytest.raises(PublicError) as excinfo:
        services.api_token_authenticate(raw=secret)
    assert excinfo.value.code == ErrorCode.TOKEN_REVOKED


def test_unused_team_import_guard():
    # Team is tenant-owned: reading it without a tenant is loud, not silently global.
    from tenants.context import TenantNotSet

    with pytest.raises(TenantNotSet):
        list(Team.objects.all())
