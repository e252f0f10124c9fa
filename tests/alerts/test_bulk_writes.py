"""The evaluation's write-back of changed alerts (one unnest UPDATE on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from alerts.bulk_writes import alerts_bulk_update
from alerts.models import Alert
from kpis.scopes import KpiScope
from tenants.context import tenant_context
from tests.alerts.conftest import MAY, NOW, alerts_of, evaluate, make_rule, snapshot
from tests.factories import TenantFactory

TENANT = KpiScope.tenant()


def _firing(tenant: Any) -> Alert:
    make_rule(tenant, min_sample=Decimal(30))
    snapshot(tenant, MAY, TENANT, calls=30, connects=17)
    evaluate(tenant)
    (alert,) = alerts_of(tenant)
    return alert


def test_every_evaluated_field_round_trips_exactly(tenant_a: Any, manager: Any) -> None:
    # given a firing alert whose evaluated fields all change in memory
    alert = _firing(tenant_a)
    later = NOW + dt.timedelta(hours=3, microseconds=7)
    alert.state = Alert.State.RESOLVED
    alert.value = Decimal("56.666666666667")
    alert.threshold = Decimal("-0.000000000001")
    alert.sample = None
    alert.explanation = {"value": "1e-12", "drivers": [{"kpi": "calls", "gap": "3"}], "ja": "架電"}
    alert.last_fired_at = later
    alert.last_evaluated_at = later
    alert.resolved_at = later
    alert.acknowledged_at = later
    alert.acknowledged_by = manager
    alert.last_notified_at = None
    # when written back
    with tenant_context(tenant_a):
        alerts_bulk_update([alert])
        stored = Alert.objects.get(pk=alert.pk)
    # then the row holds exactly those values
    for name in (
        "state", "value", "threshold", "sample", "explanation", "last_fired_at",
        "last_evaluated_at", "resolved_at", "acknowledged_at", "acknowledged_by_id",
        "last_notified_at",
    ):  # fmt: skip
        assert getattr(stored, name) == getattr(alert, name), name


def test_another_tenants_alert_is_never_written(tenant_a: Any) -> None:
    # given tenant A's firing alert, and the write-back run in tenant B's context
    alert = _firing(tenant_a)
    other = TenantFactory(slug="other")
    alert.state = Alert.State.RESOLVED
    alert.tenant_id = other.pk  # a forged row claims the other tenant
    # when written back in tenant B's context
    with tenant_context(other):
        alerts_bulk_update([alert])
    # then tenant A's alert is unchanged
    (stored,) = alerts_of(tenant_a)
    assert stored.state == Alert.State.FIRING


def test_nothing_to_write_runs_no_query(tenant_a: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        alerts_bulk_update([])
