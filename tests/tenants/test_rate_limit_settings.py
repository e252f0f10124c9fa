"""Setting a token's rate limits: GraphQL (create, update), Django admin and the command."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from strawberry import relay

from tenants import members, services
from tenants.context import tenant_context
from tenants.models import ApiToken
from tenants.scopes import Role
from tests.factories import UserFactory

CREATE = """
mutation Create($input: CreateApiTokenInput!) {
  createApiToken(input: $input) {
    apiToken {
      name requestsPerMinute rowsPerMinute effectiveRequestsPerMinute effectiveRowsPerMinute
    }
    errors { code message field }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateApiTokenInput!) {
  updateApiToken(input: $input) {
    apiToken { name requestsPerMinute rowsPerMinute effectiveRequestsPerMinute }
    errors { code message field }
  }
}
"""
REQUESTS_RANGE = (
    "requestsPerMinute must be a whole number from 1 to 100000, or null for the server's default."
)
ROWS_RANGE = (
    "rowsPerMinute must be a whole number from 1 to 10000000, or null for the server's default."
)


def create_input(**limits) -> dict:
    return {"name": "dialer", "scopes": ["records:write"], **limits}


def global_id(token: ApiToken) -> str:
    return str(relay.GlobalID("ApiToken", str(token.pk)))


def limits_of(tenant) -> list[tuple[str, int | None, int | None]]:
    with tenant_context(tenant):
        return [
            (t.name, t.requests_per_minute, t.rows_per_minute)
            for t in ApiToken.objects.order_by("pk")
        ]


def test_an_admin_creates_a_token_with_its_own_limits(graphql, tenant_a, admin_a):
    # when
    status, body = graphql(
        CREATE,
        {"input": create_input(requestsPerMinute=120, rowsPerMinute=5000)},
        user=admin_a,
        tenant="acme",
    )
    # then
    assert status == 200
    assert body["data"]["createApiToken"] == {
        "apiToken": {
            "name": "dialer",
            "requestsPerMinute": 120,
            "rowsPerMinute": 5000,
            "effectiveRequestsPerMinute": 120,
            "effectiveRowsPerMinute": 5000,
        },
        "errors": [],
    }
    assert limits_of(tenant_a) == [("dialer", 120, 5000)]


def test_a_token_without_limits_shows_the_defaults_in_force(graphql, tenant_a, admin_a, settings):
    settings.API_TOKEN_RATE_REQUESTS_PER_MINUTE = 42
    _, body = graphql(CREATE, {"input": create_input()}, user=admin_a, tenant="acme")
    assert body["data"]["createApiToken"]["apiToken"] == {
        "name": "dialer",
        "requestsPerMinute": None,
        "rowsPerMinute": None,
        "effectiveRequestsPerMinute": 42,
        "effectiveRowsPerMinute": 60000,
    }


@pytest.mark.parametrize(
    ("limits", "field", "message"),
    [
        ({"requestsPerMinute": -1}, "requestsPerMinute", REQUESTS_RANGE),
        ({"requestsPerMinute": 0}, "requestsPerMinute", REQUESTS_RANGE),
        ({"requestsPerMinute": 100_001}, "requestsPerMinute", REQUESTS_RANGE),
        ({"rowsPerMinute": 0}, "rowsPerMinute", ROWS_RANGE),
        ({"rowsPerMinute": 10_000_001}, "rowsPerMinute", ROWS_RANGE),
    ],
    ids=["negative", "zero", "requests-too-many", "rows-zero", "rows-too-many"],
)
def test_limits_out_of_bounds_are_typed_errors_and_create_nothing(
    graphql, tenant_a, admin_a, limits, field, message
):
    # when
    status, body = graphql(CREATE, {"input": create_input(**limits)}, user=admin_a, tenant="acme")
    # then
    assert status == 200
    assert body["data"]["createApiToken"] == {
        "apiToken": None,
        "errors": [{"code": "VALIDATION", "message": message, "field": field}],
    }
    assert limits_of(tenant_a) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            2**40,
            "Variable '$input' has invalid value at .requestsPerMinute: "
            "Int cannot represent non 32-bit signed integer value: 1099511627776",
        ),
        (
            "600",
            "Variable '$input' has invalid value at .requestsPerMinute: "
            "Int cannot represent non-integer value: '600'",
        ),
        (
            1.5,
            "Variable '$input' has invalid value at .requestsPerMinute: "
            "Int cannot represent non-integer value: 1.5",
        ),
    ],
    ids=["2^40", "string", "fraction"],
)
def test_limits_graphql_cannot_read_are_clear_validation_errors(
    graphql, tenant_a, admin_a, value, message
):
    # when the value comes in a variable, as every real client sends it
    status, body = graphql(
        CREATE, {"input": create_input(requestsPerMinute=value)}, user=admin_a, tenant="acme"
    )
    # then it is a typed VALIDATION error naming the field, not INTERNAL, and nothing changed
    assert status == 200
    assert body["data"] is None
    assert [(e["message"], e["extensions"]) for e in body["errors"]] == [
        (message, {"code": "VALIDATION"})
    ]
    assert limits_of(tenant_a) == []


def test_an_admin_changes_and_clears_a_tokens_limits(graphql, tenant_a, admin_a):
    # given
    token, _ = services.api_token_create(
        tenant=tenant_a, name="dialer", scopes=["records:write"], rows_per_minute=100
    )
    # when the requests limit is set and the rows limit cleared
    _, body = graphql(
        UPDATE,
        {"input": {"id": global_id(token), "requestsPerMinute": 30, "rowsPerMinute": None}},
        user=admin_a,
        tenant="acme",
    )
    # then
    assert body["data"]["updateApiToken"] == {
        "apiToken": {
            "name": "dialer",
            "requestsPerMinute": 30,
            "rowsPerMinute": None,
            "effectiveRequestsPerMinute": 30,
        },
        "errors": [],
    }
    assert limits_of(tenant_a) == [("dialer", 30, None)]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"requestsPerMinute": 0}, {"field": "requestsPerMinute", "message": REQUESTS_RANGE}),
        ({"rowsPerMinute": -5}, {"field": "rowsPerMinute", "message": ROWS_RANGE}),
        ({"name": None}, {"field": "name", "message": "This field cannot be null."}),
        ({"name": " "}, {"field": "name", "message": "Name must be 1 to 100 characters."}),
    ],
    ids=["requests-zero", "rows-negative", "name-null", "name-blank"],
)
def test_a_bad_update_is_a_typed_error_and_changes_nothing(
    graphql, tenant_a, admin_a, changes, error
):
    # given
    token, _ = services.api_token_create(
        tenant=tenant_a, name="dialer", scopes=["records:write"], requests_per_minute=10
    )
    # when
    _, body = graphql(
        UPDATE,
        {"input": {"id": global_id(token), "rowsPerMinute": 50, **changes}},
        user=admin_a,
        tenant="acme",
    )
    # then
    assert body["data"]["updateApiToken"] == {
        "apiToken": None,
        "errors": [{"code": "VALIDATION", **error}],
    }
    assert limits_of(tenant_a) == [("dialer", 10, None)]


def test_another_tenants_token_cannot_be_updated(graphql, tenant_a, tenant_b, admin_a):
    # given B's token
    token_b, _ = services.api_token_create(tenant=tenant_b, name="b", scopes=["records:write"])
    # when A's admin tries to change it
    _, body = graphql(
        UPDATE,
        {"input": {"id": global_id(token_b), "requestsPerMinute": 1}},
        user=admin_a,
        tenant="acme",
    )
    # then it is not found, and unchanged
    assert body["data"]["updateApiToken"] == {
        "apiToken": None,
        "errors": [{"code": "NOT_FOUND", "message": "API token not found.", "field": "id"}],
    }
    assert limits_of(tenant_b) == [("b", None, None)]


def test_only_admins_change_limits(graphql, tenant_a):
    # given a manager (config:write, not tokens:manage)
    manager = UserFactory(username="mona")
    members.membership_add(tenant=tenant_a, user=manager, role=Role.MANAGER)
    token, _ = services.api_token_create(tenant=tenant_a, name="dialer", scopes=["kpis:read"])
    # when
    _, body = graphql(
        UPDATE,
        {"input": {"id": global_id(token), "requestsPerMinute": 100_000}},
        user=manager,
        tenant="acme",
    )
    # then
    assert body["data"]["updateApiToken"]["errors"][0]["code"] == "PERMISSION_DENIED"
    assert limits_of(tenant_a) == [("dialer", None, None)]


def test_admin_form_creates_a_token_with_limits(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        "/admin/tenants/apitoken/add/",
        {"name": "dialer", "scopes": ["records:write"], "requests_per_minute": "90"},
    )
    assert response.status_code == 302
    assert limits_of(tenant_a) == [("dialer", 90, None)]


@pytest.mark.parametrize("value", ["0", "-3", "1099511627776", "many"])
def test_admin_form_refuses_a_bad_limit_and_creates_nothing(client, admin_a, tenant_a, value):
    client.force_login(admin_a)
    response = client.post(
        "/admin/tenants/apitoken/add/",
        {"name": "dialer", "scopes": ["records:write"], "rows_per_minute": value},
    )
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors.keys() == {"rows_per_minute"}
    assert limits_of(tenant_a) == []


def test_admin_change_form_sets_and_clears_limits(client, admin_a, tenant_a):
    # given
    token, _ = services.api_token_create(
        tenant=tenant_a, name="dialer", scopes=["records:write"], rows_per_minute=100
    )
    client.force_login(admin_a)
    url = f"/admin/tenants/apitoken/{token.pk}/change/"
    # when
    bad = client.post(url, {"name": "dialer", "requests_per_minute": "0"})
    good = client.post(url, {"name": "dialer 2", "requests_per_minute": "25"})
    # then
    assert bad.status_code == 200
    assert bad.context["adminform"].form.errors.keys() == {"requests_per_minute"}
    assert good.status_code == 302
    assert limits_of(tenant_a) == [("dialer 2", 25, None)]


def test_command_creates_a_token_with_limits(tenant_a, capsys):
    call_command(
        "create_api_token",
        "--tenant=acme",
        "--name=sfa",
        "--scope=records:write",
        "--requests-per-minute=120",
        "--rows-per-minute=9000",
    )
    assert capsys.readouterr().out.startswith("kpi_")
    assert limits_of(tenant_a) == [("sfa", 120, 9000)]


def test_command_refuses_a_bad_limit_and_creates_nothing(tenant_a):
    with pytest.raises(CommandError, match=r"^rowsPerMinute must be a whole number from 1"):
        call_command(
            "create_api_token",
            "--tenant=acme",
            "--name=sfa",
            "--scope=records:write",
            "--rows-per-minute=0",
        )
    assert limits_of(tenant_a) == []
