"""Fixtures of the reports tests: a small sales team with a month of activity and alerts."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest

from alerts import services as alert_services
from alerts.evaluation import alerts_evaluate
from kpis.periods import parse_period
from kpis.scopes import KpiScope
from kpis.snapshots import kpi_snapshots_rebuild
from kpis.targets import kpi_target_set
from pipeline import services as pipeline_services
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


@pytest.fixture
def sales(tenant_a: Any) -> dict[str, Any]:
    """Two teams, three reps; June 2026 (and May, the comparison): leads moved down the
    funnel, calls, a target for calls, and a firing alert."""
    teams = [TeamFactory(tenant=tenant_a, name=name) for name in ("East", "West")]
    reps = [
        members.membership_add(
            tenant=tenant_a, user=UserFactory(username=name), role=Role.REP, team=team
        )
        for name, team in (("ren", teams[0]), ("rio", teams[0]), ("sai", teams[1]))
    ]
    manager = members.membership_add(
        tenant=tenant_a, user=UserFactory(username="mika"), role=Role.MANAGER, team=teams[0]
    )
    with tenant_context(tenant_a):
        for month, count in ((5, 3), (6, 6)):
            for index in range(count):
                rep = reps[index % 3]
                lead = pipeline_services.lead_create(
                    tenant=tenant_a,
                    company=f"社{month}-{index}",
                    source="web" if index % 2 else "event",
                    owner=rep,
                    created_at=at(2026, month, 2 + index, 10),
                )
                stages = ["mql", "sql", "meeting", "opportunity", "won"][: 1 + index % 5]
                for step, stage in enumerate(stages):
                    pipeline_services.lead_transition(
                        lead=lead, to_stage=stage, at=at(2026, month, 3 + index, 10 + step)
                    )
                for call in range(1 + index):
                    pipeline_services.activity_create(
                        tenant=tenant_a,
                        lead=lead,
                        rep=rep,
                        type="call",
                        call_outcome="connected" if call % 2 == 0 else "no_answer",
                        occurred_at=at(2026, month, 3 + index, 14, call),
                    )
        kpi_snapshots_rebuild(tenant=tenant_a)
        kpi_target_set(
            tenant=tenant_a,
            kpi_key="calls",
            period=parse_period("2026-06"),
            scope=KpiScope.tenant(),
            value=Decimal(40),
            set_by=None,
        )
        alert_services.alert_rule_create(
            tenant=tenant_a,
            name="Too few calls",
            kpi_key="calls",
            scope_type="tenant",
            scope_key="",
            grain="month",
            kind="below_value",
            threshold=Decimal(1000),
            improvement_action="Call more.",
            recipient_roles=["manager"],
            channels=["in_app"],
        )
    alerts_evaluate(tenant=tenant_a, now=at(2026, 6, 30, 12))
    return {"teams": teams, "reps": reps, "manager": manager}
