"""Fixtures of the routing, SLA, return and queue tests: a field-sales team, an active rule
version with routing, SLA and return rules, and leads handed over as SQL.

A folder of their own: tests/handoff/conftest.py belongs to the rule-set tests."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from handoff.handoffs import handoff_open
from handoff.models import Handoff, RuleSet, RuleVersion
from handoff.routing import routing_validate
from handoff.sla_rules import return_rules_validate, sla_validate
from pipeline.lifecycle import Stage
from pipeline.models import Lead
from pipeline.services import lead_transition
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import TeamFactory, UserFactory

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
# Monday 2026-11-16 10:00 in Tokyo; 2026-11-23 (Monday) is 勤労感謝の日.
MONDAY = dt.datetime(2026, 11, 16, 10, 0, tzinfo=TOKYO)

SLA = {
    "speedToLeadHours": 1,
    "acceptHours": 8,
    "steps": [
        {"atPercent": 50, "action": "remindOwner"},
        {"atPercent": 100, "action": "notifyManager"},
        {"atPercent": 150, "action": "reassign"},
    ],
}
RETURN_RULES = {"meetingWithinDays": 14, "reasons": ["noBudget", "badTiming", "notDecisionMaker"]}


def add_member(tenant: Any, username: str, role: str, team: Any = None) -> Any:
    return members.membership_add(
        tenant=tenant, user=UserFactory(username=username), role=role, team=team
    )


def make_version(
    tenant: Any, *, routing: dict | None = None, status: str = "active", **parts: Any
) -> RuleVersion:
    with tenant_context(tenant):
        rule_set, _ = RuleSet.objects.get_or_create(tenant=tenant, name="Default")
        number = RuleVersion.objects.filter(rule_set=rule_set).count() + 1
        return RuleVersion.objects.create(
            tenant=tenant,
            rule_set=rule_set,
            number=number,
            status=status,
            routing=routing_validate(routing or {}),
            sla=sla_validate(parts.get("sla", SLA)),
            return_rules=return_rules_validate(parts.get("return_rules", RETURN_RULES)),
        )


def make_lead(tenant: Any, company: str = "Customer", **fields: Any) -> Lead:
    fields.setdefault("created_at", MONDAY - dt.timedelta(days=30))
    with tenant_context(tenant):
        return Lead.objects.create(tenant=tenant, company=company, **fields)


def sql_handoff(
    tenant: Any,
    version: RuleVersion,
    *,
    at: dt.datetime,
    owner: Any = None,
    company: str = "Customer",
) -> Handoff:
    """A lead moved lead → mql → sql at `at` and handed to `owner`."""
    lead = make_lead(tenant, company=company, owner=owner)
    lead_transition(lead=lead, to_stage=Stage.MQL, at=at - dt.timedelta(hours=1))
    transition = lead_transition(lead=lead, to_stage=Stage.SQL, at=at)
    return handoff_open(lead=lead, transition=transition, version=version)


@pytest.fixture
def field_team(tenant_a: Any) -> Any:
    return TeamFactory(tenant=tenant_a, name="Field East")


@pytest.fixture
def sellers(tenant_a: Any, field_team: Any) -> list[Any]:
    return [
        add_member(tenant_a, name, Role.FIELD_SALES, field_team) for name in ("fs1", "fs2", "fs3")
    ]


@pytest.fixture
def field_manager(tenant_a: Any, field_team: Any) -> Any:
    return add_member(tenant_a, "boss", Role.MANAGER, field_team)
