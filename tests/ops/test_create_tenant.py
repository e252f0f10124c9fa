"""First start: create_tenant makes a tenant, an admin with a generated password, a token;
refuses weak or invalid input and leaves nothing behind; demo_tenant is debug-only."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants import services
from tenants.context import tenant_context
from tenants.models import ApiToken, Membership, Tenant


def _create(*args: str) -> str:
    out = StringIO()
    call_command("create_tenant", *args, stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, int]:
    return Tenant.objects.count(), get_user_model().objects.count()


@pytest.mark.django_db
def test_it_creates_the_tenant_an_admin_with_a_generated_password_and_a_token() -> None:
    # when the documented first-start command runs
    out = _create(
        "--slug", "acme", "--name", "Acme", "--admin-email", "a@b.co",
        "--timezone", "America/New_York", "--language", "en",
        "--with-token", "--token-scopes", "kpis:read,records:write",
    )  # fmt: skip
    # then the tenant has its settings, the admin can sign in with the printed password
    tenant = Tenant.objects.get(slug="acme")
    assert (tenant.name, tenant.timezone, tenant.language) == ("Acme", "America/New_York", "en")
    password = re.search(r"Password:\s+(\S+)", out).group(1)
    assert len(password) == 24
    user = authenticate(username="a@b.co", password=password)
    assert user is not None and user.is_staff and user.email == "a@b.co"
    with tenant_context(tenant):
        assert Membership.objects.get(user=user).role == "admin"
    # and the printed token works, with exactly the scopes asked
    secret = re.search(r"API token:\s+(\S+)", out).group(1)
    token = services.api_token_authenticate(raw=secret)
    assert (token.tenant.pk, sorted(token.scopes)) == (tenant.pk, ["kpis:read", "records:write"])
    # and a second run generates another password (never a fixed one)
    other = _create("--slug", "globex", "--name", "G", "--admin-email", "g@b.co")
    assert re.search(r"Password:\s+(\S+)", other).group(1) != password
    assert "API token" not in other


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slug", "Bad Slug!"], "--slug"),
        (["--admin-email", "not-an-email"], "--admin-email"),
        (["--timezone", "Mars/Olympus"], "--timezone"),
        (["--with-token", "--token-scopes", "kpis:read,root"], "unknown root"),
        (["--token-scopes", "kpis:read"], "needs --with-token"),
        (["--holiday-country", "XX"], "holidayCountry"),
    ],
)
@pytest.mark.django_db
def test_invalid_input_is_refused_and_nothing_is_created(args: list[str], message: str) -> None:
    # given the valid arguments, one of them replaced
    base = {"--slug": "acme", "--name": "Acme", "--admin-email": "a@b.co"}
    argv = [part for key, value in base.items() if key not in args for part in (key, value)]
    before = _counts()
    # when / then
    with pytest.raises(CommandError, match=re.escape(message)):
        _create(*argv, *args)
    assert _counts() == before


@pytest.mark.django_db
def test_an_existing_slug_or_login_is_refused_and_changes_nothing(tenant_a: Any) -> None:
    _create("--slug", "globex", "--name", "G", "--admin-email", "g@b.co")
    before = _counts()
    with pytest.raises(CommandError, match=re.escape("a tenant 'acme' already exists")):
        _create("--slug", "acme", "--name", "Other", "--admin-email", "x@b.co")
    with pytest.raises(CommandError, match=re.escape("a user 'g@b.co' already exists")):
        _create("--slug", "initech", "--name", "I", "--admin-email", "g@b.co")
    assert _counts() == before
    assert Tenant.objects.get(slug="acme").name == "Acme"
    with tenant_context(tenant_a):
        assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_demo_tenant_refuses_outside_debug_mode(settings: Any) -> None:
    settings.DEBUG = False
    before = _counts()
    with pytest.raises(CommandError, match="only in debug mode"):
        call_command("demo_tenant", "--tenant", "demo", stdout=StringIO())
    assert _counts() == before
    # in debug mode (make run) it still works
    settings.DEBUG = True
    out = StringIO()
    call_command("demo_tenant", "--tenant", "demo", stdout=out)
    assert "demo-password-2026" in out.getvalue()
