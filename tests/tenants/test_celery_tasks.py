"""Celery tasks run in their tenant's scope; with a broker, through a real worker and Redis."""

from __future__ import annotations

import pytest

from backend.celery import app
from tenants.tasks import workspace_summary_task
from tests.factories import MembershipFactory, TeamFactory


def test_task_counts_only_its_tenant(tenant_a, tenant_b):
    TeamFactory(tenant=tenant_a)
    TeamFactory(tenant=tenant_b)
    TeamFactory(tenant=tenant_b)
    assert workspace_summary_task.run(tenant_b.pk)["teams"] == 2


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_round_trip_through_redis_and_a_real_worker(tenant_a, tenant_b, token_a):
    from celery.contrib.testing.worker import start_worker

    # given committed data in two tenants
    TeamFactory(tenant=tenant_a)
    MembershipFactory(tenant=tenant_a)
    TeamFactory(tenant=tenant_b)
    assert not app.conf.task_always_eager
    # when a real worker thread consumes the tasks from the broker
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
        result_a = workspace_summary_task.delay(tenant_a.pk).get(timeout=20)
        result_b = workspace_summary_task.delay(tenant_b.pk).get(timeout=20)
    # then each ran scoped to its own tenant
    assert result_a == {"tenant_id": tenant_a.pk, "members": 1, "teams": 1, "live_tokens": 1}
    assert result_b == {"tenant_id": tenant_b.pk, "members": 0, "teams": 1, "live_tokens": 0}
