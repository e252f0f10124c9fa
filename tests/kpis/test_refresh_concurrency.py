"""A write that marks a day while a refresh holds it is neither lost nor counted twice.

PostgreSQL only: two connections (threads) and real row locks.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connections

from kpis.models import KpiSnapshot
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_refresh_dirty
from kpis.snapshots import refresh as snapshot_refresh
from pipeline import services as pipeline_services
from pipeline.models import DirtyDay, Lead
from tenants.context import tenant_context

AT = dt.datetime(2026, 6, 1, 2, tzinfo=dt.UTC)
DAY = dt.date(2026, 6, 1)


def _in_thread(target: Any) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _table() -> dict[tuple, tuple]:
    return {
        (r[0], r[1], r[2], r[3]): r[4:]
        for r in KpiSnapshot.objects.values_list(
            "grain", "period_start", "scope_type", "scope_key", "calls", "leads_touched"
        )
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_call_marked_while_its_day_is_refreshed_waits_and_is_counted_once(
    tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no refresh queued by the writes themselves (eager Celery would run it at once,
    # and a worker at any time): the test's own refreshes are the only ones
    monkeypatch.setattr("kpis.snapshots.scheduling._queue_once", lambda *args: False)
    # and a refreshed day, then a call added to it (its day lists the call)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="A", created_at=AT)
        pipeline_services.activity_create(tenant=tenant_a, lead=lead, type="call", occurred_at=AT)
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        pipeline_services.activity_create(tenant=tenant_a, lead=lead, type="call", occurred_at=AT)
    # when a refresh holds the day's mark (it is paused before it commits)
    holding, release = threading.Event(), threading.Event()
    original = snapshot_refresh._refresh_days

    def paused(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        holding.set()
        assert release.wait(10)
        return result

    monkeypatch.setattr(snapshot_refresh, "_refresh_days", paused)

    def refresh() -> None:
        with tenant_context(tenant_a):
            kpi_snapshots_refresh_dirty(tenant=tenant_a)

    refresher = _in_thread(refresh)
    assert holding.wait(10)
    monkeypatch.setattr(snapshot_refresh, "_refresh_days", original)
    done = threading.Event()

    def write() -> None:
        with tenant_context(tenant_a):
            again = Lead.objects.get(pk=lead.pk)
            pipeline_services.activity_create(
                tenant=tenant_a, lead=again, type="call", occurred_at=AT
            )
        done.set()

    # and a third call on the same day is written meanwhile
    writer = _in_thread(write)
    # then the write waits for the refresh, and lands after it as a new mark of its own
    assert not done.wait(0.5)
    release.set()
    refresher.join(10)
    writer.join(10)
    assert done.is_set()
    with tenant_context(tenant_a):
        marks = list(DirtyDay.objects.values_list("day", "added_activities"))
        assert len(marks) == 1 and marks[0][0] == DAY and len(marks[0][1]) == 1
        kpi_snapshots_refresh_dirty(tenant=tenant_a)
        day = KpiSnapshot.objects.get(grain="day", scope_type="tenant")
        assert (day.calls, day.leads_touched) == (3, 1)
        incremental = _table()
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert _table() == incremental
