"""After a batch commits: refresh → kpis.hooks listener → alerts.evaluate_tenant → alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import Alert
from alerts.tasks import evaluate_all_task
from backend.celery import app
from kpis.periods import local_date, period_containing
from pipeline import services as pipeline_services
from tenants.context import tenant_context
from tests.alerts.conftest import make_rule
from tests.pipeline.factories import LeadFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager() -> Iterator[None]:
    # NOTE: this tests the wiring, not the broker: tasks run in-process on both databases.
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_a_refreshed_batch_fires_an_alert(tenant_a: Any, rep: Any, eager: None) -> None:
    # given a rule "fewer than 5 calls this month" and a lead
    make_rule(tenant_a, kpi_key="calls", threshold=Decimal(5), min_sample=None)
    lead = LeadFactory(tenant=tenant_a, created_at=timezone.now() - dt.timedelta(hours=2))
    today = local_date(timezone.now(), tenant_a.timezone)
    month = period_containing("month", today, tenant_a.fiscal_year_start_month)
    # when three calls are written (each commit refreshes its day, then evaluates)
    for _ in range(3):
        with tenant_context(tenant_a):
            pipeline_services.activity_create(
                tenant=tenant_a,
                lead=lead,
                type="call",
                rep=rep,
                occurred_at=timezone.now() - dt.timedelta(minutes=5),
            )
    # then this month's alert fires with the refreshed value
    with tenant_context(tenant_a):
        alert = Alert.objects.get(period_start=month.start)
    assert (alert.state, alert.value, alert.scope_type) == ("firing", 3, "tenant")
    # when two more calls bring it to 5
    for _ in range(2):
        with tenant_context(tenant_a):
            pipeline_services.activity_create(
                tenant=tenant_a, lead=lead, type="call", rep=rep, occurred_at=timezone.now()
            )
    # then it resolved
    with tenant_context(tenant_a):
        alert = Alert.objects.get(period_start=month.start)
    assert (alert.state, alert.value) == ("resolved", 5)


def test_the_beat_fans_out_over_active_tenants(tenant_a: Any, tenant_b: Any, eager: None) -> None:
    # given A with a firing rule (no activity at all in a month: silence everywhere)
    make_rule(tenant_a, kind="silence", kpi_key="", threshold=Decimal(8), grain="week")
    tenant_b.is_active = False
    tenant_b.save(update_fields=["is_active"])
    # when
    queued = evaluate_all_task()
    # then only A was evaluated, and its alert exists
    assert queued == [tenant_a.pk]
    with tenant_context(tenant_a):
        assert Alert.objects.filter(state="firing").count() == 1
