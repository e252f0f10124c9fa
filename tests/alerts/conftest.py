"""Fixtures of the alert tests: a fixed clock, reps and teams, snapshot rows and rules."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

from alerts import services
from alerts.evaluation import alerts_evaluate
from kpis.models import KpiSnapshot
from kpis.periods import Period, period_containing
from kpis.scopes import KpiScope
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
# Wednesday 2026-05-20 10:00 in Tokyo: May 2026 has 18 working days (Golden Week: 4, 5 and
# the substitute holiday 6 May are off), 11 of them elapsed today included.
NOW = dt.datetime(2026, 5, 20, 10, 0, tzinfo=TOKYO)
MAY = period_containing("month", dt.date(2026, 5, 1))
APRIL = period_containing("month", dt.date(2026, 4, 1))


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


@pytest.fixture
def team(tenant_a: Any) -> Any:
    return TeamFactory(tenant=tenant_a, name="IS East")


@pytest.fixture
def rep(tenant_a: Any, team: Any) -> Any:
    return members.membership_add(
        tenant=tenant_a, user=UserFactory(username="rita"), role=Role.REP, team=team
    )


@pytest.fixture
def manager(tenant_a: Any, team: Any) -> Any:
    return members.membership_add(
        tenant=tenant_a, user=UserFactory(username="mika"), role=Role.MANAGER, team=team
    )


def snapshot(tenant: Any, period: Period, scope: KpiScope, **measures: Any) -> None:
    """Set the stored measures of one period and scope (others 0)."""
    with tenant_context(tenant):
        KpiSnapshot.objects.update_or_create(
            tenant=tenant,
            grain=period.grain,
            period_start=period.start,
            scope_type=scope.type,
            scope_key=scope.key,
            defaults={"period_end": period.end, **measures},
        )


def make_rule(tenant: Any, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "name": "rule",
        "kpi_key": "connect_rate",
        "scope_type": "tenant",
        "scope_key": "",
        "grain": "month",
        "kind": "below_value",
        "threshold": Decimal(60),
        "improvement_action": "Review the call list and the talk script.",
        "recipient_roles": ["manager"],
        "channels": ["in_app"],
    } | fields
    with tenant_context(tenant):
        return services.alert_rule_create(tenant=tenant, **values)


def evaluate(tenant: Any, now: dt.datetime = NOW) -> Any:
    with tenant_context(tenant):
        return alerts_evaluate(tenant=tenant, now=now)


def alerts_of(tenant: Any) -> list[Any]:
    from alerts.models import Alert

    with tenant_context(tenant):
        return list(Alert.objects.order_by("period_start", "scope_key", "pk"))
