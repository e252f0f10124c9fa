"""Fixtures of the pipeline tests: members and teams of tenant A, and B's member."""

from __future__ import annotations

from typing import Any

import pytest

from tenants import members
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory, api_token


@pytest.fixture
def team_a(tenant_a: Any) -> Any:
    return TeamFactory(tenant=tenant_a, name="IS East")


@pytest.fixture
def rep_a(tenant_a: Any, team_a: Any) -> Any:
    """A rep of tenant A in team IS East (a Membership)."""
    return members.membership_add(
        tenant=tenant_a, user=UserFactory(username="rita"), role=Role.REP, team=team_a
    )


@pytest.fixture
def rep_b(tenant_b: Any) -> Any:
    """A rep of tenant B (a Membership)."""
    return members.membership_add(tenant=tenant_b, user=UserFactory(username="bert"), role=Role.REP)


@pytest.fixture
def read_only_token_a(tenant_a: Any) -> str:
    secret = api_token(tenant_a, "records:read", name="bi")
    return secret
