"""Fixtures shared by the KPI tests: planners' tokens (kpis:read and kpis:write) of A and B."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import api_token


@pytest.fixture
def planner_token_a(tenant_a: Any) -> str:
    return api_token(tenant_a, "kpis:read", "kpis:write", name="planner")


@pytest.fixture
def planner_token_b(tenant_b: Any) -> str:
    return api_token(tenant_b, "kpis:read", "kpis:write", name="planner")
