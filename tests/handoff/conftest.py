"""Fixtures of the handoff tests: a fixed clock, the members who agree, leads and activities."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from handoff import services
from handoff.models import RuleVersion
from pipeline.models import Activity, Lead
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 5, 20, 10, 0, tzinfo=TOKYO)

CLICKED_TWICE_BIG = {
    "mode": "all",
    "conditions": [
        {"kind": "employeeCount", "op": "gte", "value": 50},
        {"kind": "activity", "activity": "emailClicked", "days": 14, "atLeast": 2},
    ],
}
BANT = {
    "activity": {"activity": "connectedCall", "atLeast": 1},
    "requiredFields": ["budget", "authority", "need", "timeline"],
}


def member(tenant: Any, username: str, role: str) -> Any:
    return members.membership_add(tenant=tenant, user=UserFactory(username=username), role=role)


@pytest.fixture
def marketer(tenant_a: Any) -> Any:
    return member(tenant_a, "mika", Role.MARKETING)


@pytest.fixture
def seller(tenant_a: Any) -> Any:
    return member(tenant_a, "sato", Role.FIELD_SALES)


@pytest.fixture
def manager(tenant_a: Any) -> Any:
    return member(tenant_a, "mori", Role.MANAGER)


def make_lead(tenant: Any, **fields: Any) -> Lead:
    fields.setdefault("company", "Acme customer")
    fields.setdefault("created_at", NOW - dt.timedelta(days=30))
    with tenant_context(tenant):
        return Lead.objects.create(tenant=tenant, **fields)


def add_activity(lead: Lead, kind: str, at: dt.datetime, **fields: Any) -> Activity:
    with tenant_context(lead.tenant_id):
        return Activity.objects.create(
            tenant_id=lead.tenant_id, lead=lead, type=kind, occurred_at=at, **fields
        )


def clicks(lead: Lead, *ages: dt.timedelta) -> None:
    for age in ages:
        add_activity(lead, "email", NOW - age, email_clicked=True, email_opened=True)


def agreed_version(
    tenant: Any,
    marketer: Any,
    seller: Any,
    *,
    mql: dict[str, Any] | None = None,
    sql: dict[str, Any] | None = None,
    name: str = "Standard",
    activate: bool = True,
) -> RuleVersion:
    """A version of a new rule set that both sides approved (and, by default, activated)."""
    with tenant_context(tenant):
        rule_set = services.rule_set_create(tenant=tenant, name=name)
        version = services.rule_version_create(
            tenant=tenant,
            rule_set=rule_set,
            parts={
                "mql_conditions": CLICKED_TWICE_BIG if mql is None else mql,
                "sql_requirements": BANT if sql is None else sql,
            },
            actor=marketer,
        )
        services.rule_version_approve(tenant=tenant, version=version, member=marketer)
        version = services.rule_version_approve(tenant=tenant, version=version, member=seller)
        if activate:
            version = services.rule_version_activate(tenant=tenant, version=version, actor=seller)
        return version
