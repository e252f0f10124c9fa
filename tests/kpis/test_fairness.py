"""Many tenants on one worker pool: queues, the nightly fan-out and statistics upkeep."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.core.cache import cache

from backend.celery import app
from kpis import tasks
from kpis.models import KpiSnapshot
from kpis.snapshots import kpi_snapshots_rebuild
from kpis.tasks import rebuild_all_task, rebuild_tenant_task, refresh_tenant_task
from pipeline import services as pipeline_services
from pipeline import statistics
from tenants.context import tenant_context
from tenants.models import Tenant

UTC = dt.UTC
AT = dt.datetime(2026, 6, 1, 2, tzinfo=UTC)
# 03:30 on Friday 5 June 2026 in Tokyo: the nightly rebuild hour, not the weekly full one.
TOKYO_NIGHT = "2026-06-04T18:30:00+00:00"


def _queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, (), {})["queue"].name


def _call(tenant: Any) -> None:
    with tenant_context(tenant):
        lead = pipeline_services.lead_create(tenant=tenant, company="A社", created_at=AT)
        pipeline_services.activity_create(tenant=tenant, lead=lead, type="call", occurred_at=AT)


def _rebuilt(tenant: Any) -> None:
    with tenant_context(tenant):
        kpi_snapshots_rebuild(tenant=tenant)


def _changed_at(tenant: Any) -> dt.datetime | None:
    return Tenant.objects.values_list("kpi_changed_at", flat=True).get(pk=tenant.pk)


@pytest.fixture
def queued_rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The tenant ids of the rebuilds queued (not run) during the test."""
    cache.clear()
    queued: list[int] = []
    monkeypatch.setattr(rebuild_tenant_task, "delay", queued.append)
    return queued


def test_refreshes_go_to_the_default_queue_and_rebuilds_to_the_bulk_queue() -> None:
    assert {
        name: _queue_of(name)
        for name in (
            "kpis.refresh_tenant",
            "kpis.refresh_dirty_sweep",
            "alerts.evaluate_tenant",
            "kpis.rebuild_tenant",
            "kpis.rebuild_all",
            "pipeline.analyze_stale_tables",
        )
    } == {
        "kpis.refresh_tenant": "default",
        "kpis.refresh_dirty_sweep": "default",
        "alerts.evaluate_tenant": "default",
        "kpis.rebuild_tenant": "bulk",
        "kpis.rebuild_all": "bulk",
        "pipeline.analyze_stale_tables": "bulk",
    }
    # a task nobody routed goes to the default, latency-sensitive queue
    assert _queue_of("tenants.workspace_summary") == "default"
    # deliveries have their own queue
    assert _queue_of("notifications.deliver_webhook") == "notifications"
    # a worker started without -Q (make worker, the test worker) consumes every queue
    assert sorted(app.amqp.queues) == ["bulk", "default", "notifications"]


@pytest.mark.django_db
def test_a_write_marks_its_tenant_changed_once_and_a_rebuild_clears_it(
    tenant_a: Any, tenant_b: Any
) -> None:
    # given both tenants rebuilt (nothing changed since)
    _rebuilt(tenant_a)
    _rebuilt(tenant_b)
    assert (_changed_at(tenant_a), _changed_at(tenant_b)) == (None, None)
    # when tenant A writes twice
    _call(tenant_a)
    first = _changed_at(tenant_a)
    _call(tenant_a)
    # then A is marked changed from its first write on; B is not
    assert first is not None
    assert _changed_at(tenant_a) == first
    assert _changed_at(tenant_b) is None
    # and A's next rebuild clears the mark
    _rebuilt(tenant_a)
    assert _changed_at(tenant_a) is None


@pytest.mark.django_db
def test_the_nightly_fan_out_rebuilds_changed_tenants_and_skips_the_others(
    tenant_a: Any, tenant_b: Any, queued_rebuilds: list[int]
) -> None:
    # given both tenants rebuilt, then a write in tenant A only
    _rebuilt(tenant_a)
    _rebuilt(tenant_b)
    _call(tenant_a)
    # when the nightly fan-out runs
    queued = rebuild_all_task.run(now=TOKYO_NIGHT)
    # then only A is queued for a rebuild
    assert queued == [tenant_a.pk]
    assert queued_rebuilds == [tenant_a.pk]


@pytest.mark.django_db
def test_the_nightly_fan_out_queues_a_tenant_waiting_for_a_rebuild_and_nothing_twice(
    tenant_a: Any, tenant_b: Any, queued_rebuilds: list[int]
) -> None:
    # given both tenants rebuilt, then B asked for a rebuild (a team move) not yet queued
    _rebuilt(tenant_a)
    _rebuilt(tenant_b)
    Tenant.objects.filter(pk=tenant_b.pk).update(kpi_rebuild_requested_at=AT)
    # when the fan-out runs twice before the rebuild starts
    first = rebuild_all_task.run(now=TOKYO_NIGHT)
    second = rebuild_all_task.run(now=TOKYO_NIGHT)
    # then B is queued once, A never
    assert (first, second) == ([tenant_b.pk], [])
    assert queued_rebuilds == [tenant_b.pk]


@pytest.mark.django_db
def test_the_weekly_forced_fan_out_rebuilds_every_tenant(
    tenant_a: Any, tenant_b: Any, queued_rebuilds: list[int]
) -> None:
    # given both tenants rebuilt and unchanged since
    _rebuilt(tenant_a)
    _rebuilt(tenant_b)
    assert rebuild_all_task.run(now=TOKYO_NIGHT) == []
    cache.clear()
    # when the forced fan-out runs
    queued = rebuild_all_task.run(now=TOKYO_NIGHT, force=True)
    # then every tenant is queued
    assert queued == sorted([tenant_a.pk, tenant_b.pk])
    assert sorted(queued_rebuilds) == sorted([tenant_a.pk, tenant_b.pk])


@pytest.mark.django_db
def test_a_skipped_tenant_keeps_exact_numbers_and_a_forced_rebuild_corrects_a_raw_edit(
    tenant_a: Any, queued_rebuilds: list[int]
) -> None:
    # given a call, refreshed, then rebuilt: numbers exact, tenant unchanged
    _call(tenant_a)
    refresh_tenant_task.run(tenant_a.pk)
    _rebuilt(tenant_a)

    def calls() -> int:
        with tenant_context(tenant_a):
            return (
                KpiSnapshot.objects.filter(grain="month", scope_type="tenant")
                .values_list("calls", flat=True)
                .get()
            )

    assert calls() == 1
    # when a second call is inserted below the services (no dirty mark, no change mark)
    from pipeline.models import Activity, Lead

    with tenant_context(tenant_a):
        lead = Lead.objects.get()
        Activity.objects.create(tenant=tenant_a, lead=lead, type="call", occurred_at=AT)
    # then the nightly run skips the tenant (nothing marked it) and the weekly forced one
    # rebuilds it, which counts the call
    assert rebuild_all_task.run(now=TOKYO_NIGHT) == []
    assert rebuild_all_task.run(now=TOKYO_NIGHT, force=True) == [tenant_a.pk]
    rebuild_tenant_task.run(tenant_a.pk)
    assert calls() == 2


@pytest.mark.django_db
def test_a_refresh_never_runs_statistics_upkeep_and_a_rebuild_does(
    tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysed: list[str] = []
    monkeypatch.setattr(tasks, "analyze_stale_tables", lambda: analysed.append("rebuild"))
    monkeypatch.setattr(statistics, "analyze_stale_tables", lambda: analysed.append("other"))
    # when a write's refresh runs, then a rebuild (bulk queue)
    _call(tenant_a)
    refresh_tenant_task.run(tenant_a.pk)
    assert analysed == []
    rebuild_tenant_task.run(tenant_a.pk)
    # then only the rebuild analysed
    assert analysed == ["rebuild"]


@pytest.mark.django_db
def test_a_large_batch_queues_one_statistics_upkeep_after_commit(
    settings: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from pipeline.tasks import analyze_stale_tables_task

    cache.clear()
    queued: list[str] = []
    monkeypatch.setattr(analyze_stale_tables_task, "delay", lambda: queued.append("analyse"))
    monkeypatch.setattr(statistics, "_enabled", lambda: True)
    # when a small batch, then two large ones, commit
    with django_capture_on_commit_callbacks(execute=True):
        assert statistics.analyze_soon(rows=statistics.ANALYZE_SOON_ROWS - 1) is False
        assert statistics.analyze_soon(rows=statistics.ANALYZE_SOON_ROWS) is True
        assert statistics.analyze_soon(rows=statistics.ANALYZE_SOON_ROWS * 2) is False
    # then one upkeep is queued (on the bulk queue), not one per batch
    assert queued == ["analyse"]
    assert _queue_of(analyze_stale_tables_task.name) == "bulk"


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_started_without_queues_runs_refreshes_and_rebuilds(tenant_a: Any) -> None:
    from celery.contrib.testing.worker import start_worker

    def calls() -> int:
        with tenant_context(tenant_a):
            row = KpiSnapshot.objects.filter(grain="month", scope_type="tenant").first()
            return row.calls if row else 0

    cache.clear()
    assert not app.conf.task_always_eager
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
        # when a write commits (its refresh goes to the default queue)
        _call(tenant_a)
        deadline = time.monotonic() + 20
        while calls() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls() == 1
        # and a forced fan-out queues a rebuild on the bulk queue
        result = rebuild_all_task.delay(now=TOKYO_NIGHT, force=True).get(timeout=20)
        assert result == [tenant_a.pk]
        deadline = time.monotonic() + 20
        while _changed_at(tenant_a) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    # then the same worker ran both: the rebuild cleared the change mark
    assert _changed_at(tenant_a) is None
    assert calls() == 1
