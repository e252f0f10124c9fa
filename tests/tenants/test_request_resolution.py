"""Request → (tenant, principal, scopes): session users, the tenant header, anonymous callers."""

from __future__ import annotations

from tenants import members, services
from tests.factories import UserFactory

ME = "{ me { authKind username role tenant { slug } workspaces { slug role } } }"


def test_member_chooses_tenant_by_header(graphql, tenant_a, tenant_b, admin_a):
    # given alice is admin in A and rep in B
    members.membership_add(tenant=tenant_b, user=admin_a, role="rep")
    # when she picks B by slug
    status, body = graphql(ME, user=admin_a, tenant="globex")
    # then
    assert status == 200
    assert body["data"]["me"] == {
        "authKind": "user",
        "username": "alice",
        "role": "REP",
        "tenant": {"slug": "globex"},
        "workspaces": [{"slug": "acme", "role": "ADMIN"}, {"slug": "globex", "role": "REP"}],
    }


def test_non_member_is_refused_and_unknown_slug_looks_the_same(graphql, tenant_a, tenant_b):
    # given carol belongs to A only
    carol = UserFactory(username="carol")
    members.membership_add(tenant=tenant_a, user=carol, role="viewer")
    # when she asks for B, and for a workspace that does not exist
    status_b, body_b = graphql(ME, user=carol, tenant="globex")
    status_x, body_x = graphql(ME, user=carol, tenant="nope")
    # then both are refused the same way
    assert (status_b, status_x) == (403, 403)
    assert body_b["errors"][0]["extensions"]["code"] == "NOT_A_MEMBER"
    assert body_x["errors"][0]["extensions"]["code"] == "NOT_A_MEMBER"
    assert body_b["data"] is None


def test_inactive_membership_is_refused(graphql, tenant_a):
    dave = UserFactory(username="dave")
    membership = members.membership_add(tenant=tenant_a, user=dave, role="rep")
    from tenants.context import tenant_context

    with tenant_context(tenant_a):
        membership.is_active = False
        membership.save(update_fields=["is_active"])
    status, _ = graphql(ME, user=dave, tenant="acme")
    assert status == 403


def test_single_membership_is_the_default_tenant(graphql, tenant_a, admin_a):
    _, body = graphql(ME, user=admin_a)
    assert body["data"]["me"]["tenant"] == {"slug": "acme"}


def test_several_memberships_and_no_header_means_no_tenant(graphql, tenant_a, tenant_b, admin_a):
    members.membership_add(tenant=tenant_b, user=admin_a, role="rep")
    _, body = graphql("{ me { tenant { slug } } tenant { slug } }", user=admin_a)
    assert body["data"] is None  # `tenant` is non-null, so the error nulls the whole result
    assert body["errors"][0]["message"] == "Choose a workspace with the 'X-Tenant' header."
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_anonymous_sees_nothing_tenant_owned(graphql, tenant_a):
    # A request without credentials is refused before GraphQL runs (issue 15): a JSON 401.
    for query in ("{ me { authKind tenant { slug } scopes } }", "{ teams { totalCount } }"):
        status, body = graphql(query)
        assert status == 401
        assert body == {
            "data": None,
            "errors": [
                {
                    "message": "Sign in or send 'Authorization: Bearer <API token>'.",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        }


def test_viewer_cannot_list_tokens(graphql, tenant_a):
    viewer = UserFactory(username="vic")
    members.membership_add(tenant=tenant_a, user=viewer, role="viewer")
    services.api_token_create(tenant=tenant_a, name="t", scopes=["kpis:read"])
    _, body = graphql("{ apiTokens { totalCount } }", user=viewer, tenant="acme")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_switch_tenant_view_checks_membership(client, tenant_a, tenant_b, admin_a):
    client.force_login(admin_a)
    refused = client.post("/tenant/switch/", {"slug": "globex"})
    assert refused.status_code == 403
    assert "tenant_slug" not in client.session
    accepted = client.post("/tenant/switch/", {"slug": "acme", "next": "https://evil.example/"})
    assert accepted.status_code == 302
    assert accepted["Location"] == "/admin/"
    assert client.session["tenant_slug"] == "acme"
