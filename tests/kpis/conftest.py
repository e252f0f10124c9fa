"""Fixtures shared by the KPI tests: planners' tokens (kpis:read and kpis:write) of A and B;
A's teams IS East and IS West and rita, a rep of East."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import MembershipFactory, TeamFactory, UserFactory, api_token


@pytest.fixture
def planner_token_a(tenant_a: Any) -> str:
    return api_token(tenant_a, "kpis:read", "kpis:write", name="planner")


@pytest.fixture
def planner_token_b(tenant_b: Any) -> str:
    return api_token(tenant_b, "kpis:read", "kpis:write", name="planner")


@pytest.fixture
def east(tenant_a: Any) -> Any:
    return TeamFactory(tenant=tenant_a, name="IS East")


@pytest.fixture
def west(tenant_a: Any) -> Any:
    return TeamFactory(tenant=tenant_a, name="IS West")


@pytest.fixture
def rita(tenant_a: Any, east: Any) -> Any:
    """A rep of team East, with no display name (labelled by username)."""
    return MembershipFactory(
        tenant=tenant_a, user=UserFactory(username="rita", password=None), team=east
    )
