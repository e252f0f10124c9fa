"""The demo's rules fire on the demo data; the admin form validates through the service."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from alerts.admin import AlertRuleForm
from alerts.demo import DEMO_RULES, demo_alerts_seed
from alerts.models import Alert, AlertRule
from kpis.demo import demo_targets_seed
from kpis.snapshots import kpi_snapshots_rebuild
from pipeline.demo import seed_demo
from tenants.context import tenant_context
from tests.alerts.conftest import TOKYO

TODAY = dt.date(2026, 5, 20)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_demo_rules_fire_on_the_demo_data(tenant_a: Any) -> None:
    # given the demo workspace as `make run` builds it
    seed_demo(tenant_slug="acme", leads=250, months=3, seed=11, today=TODAY)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
    demo_targets_seed(tenant=tenant_a, today=TODAY)
    # when the demo rules are added and evaluated (twice: nothing new the second time)
    now = dt.datetime(2026, 5, 20, 15, tzinfo=TOKYO)
    first = demo_alerts_seed(tenant=tenant_a, now=now)
    second = demo_alerts_seed(tenant=tenant_a, now=now)
    # then every rule exists once and at least one alert fires, with its action
    with tenant_context(tenant_a):
        assert AlertRule.objects.count() == len(DEMO_RULES)
        firing = list(Alert.objects.filter(state="firing").select_related("rule"))
    assert first.fired and second.fired == []
    assert len(firing) == len(first.fired)
    assert all(alert.explanation["improvementAction"] for alert in firing)


@pytest.mark.django_db
def test_admin_form_refuses_what_the_service_refuses(tenant_a: Any) -> None:
    # given an admin form with an unknown KPI and a negative threshold
    data = {
        "name": "x",
        "kpi_key": "nope",
        "scope_type": "tenant",
        "grain": "month",
        "kind": "below_value",
        "threshold": "5",
        "improvement_action": "act",
        "recipient_member_ids": "[]",
        "recipient_roles": '["manager"]',
        "channels": '["in_app"]',
        "cooldown_minutes": 60,
        "notify_every_hours": 24,
        "is_active": True,
    }
    AlertRuleForm.request_tenant = tenant_a
    try:
        with tenant_context(tenant_a):
            unknown = AlertRuleForm(data=data)
            negative = AlertRuleForm(data=data | {"kpi_key": "calls", "threshold": "-1"})
            good = AlertRuleForm(data=data | {"kpi_key": "calls"})
            # when / then
            assert unknown.errors == {"kpi_key": ["KPI 'nope' not found."]}
            assert list(negative.errors) == ["threshold"]
            assert good.is_valid(), good.errors
    finally:
        AlertRuleForm.request_tenant = None
