"""Fixtures of the tenants tests: a fake clock and fresh counters for the rate limiter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client

from tenants import rate_limits

# A whole minute (1_800_000_000 / 60 = 30_000_000), so window arithmetic is easy to follow.
START = 1_800_000_000.0


class FakeClock:
    """Stands in for time.time in tenants.rate_limits: tests move it, never sleep."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """No rate-limit counter (nor outage flag) leaks from one test into another."""
    cache.clear()
    rate_limits._outage.clear()
    yield
    cache.clear()
    rate_limits._outage.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(START)
    monkeypatch.setattr(rate_limits, "clock", fake)
    return fake


Post = Callable[..., HttpResponse]


@pytest.fixture
def post(client: Client) -> Post:
    """POST a GraphQL request with a token; returns the whole response (status, headers)."""

    def run(query: str, variables: dict[str, Any] | None = None, *, token: str) -> HttpResponse:
        return client.post(
            "/graphql/",
            data=json.dumps({"query": query, "variables": variables or {}}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    return run
