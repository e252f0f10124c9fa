"""Snapshot refreshes: queued once per tenant after commit, run by tasks, safe to repeat."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.core.cache import cache

from backend.celery import app
from kpis.models import KpiMemberPeriod, KpiSnapshot
from kpis.snapshots import kpi_snapshots_rebuild, kpi_snapshots_warm, scheduling
from kpis.tasks import refresh_dirty_sweep_task, refresh_tenant_task
from pipeline import services as pipeline_services
from pipeline.models import DirtyDay
from tenants.context import tenant_context

UTC = dt.UTC
AT = dt.datetime(2026, 6, 1, 2, tzinfo=UTC)


def _calls_on(tenant: Any, day: dt.date) -> int:
    with tenant_context(tenant):
        row = KpiSnapshot.objects.filter(grain="day", period_start=day, scope_type="tenant").first()
        return row.calls if row else 0


def _call(tenant: Any) -> None:
    with tenant_context(tenant):
        lead = pipeline_services.lead_create(tenant=tenant, company="A社", created_at=AT)
        pipeline_services.activity_create(tenant=tenant, lead=lead, type="call", occurred_at=AT)


@pytest.mark.django_db
def test_refresh_task_clears_dirty_days_and_a_second_run_is_harmless(tenant_a: Any) -> None:
    # given a write that marked its day dirty
    _call(tenant_a)
    # when the task runs twice (a redelivery)
    first = refresh_tenant_task.run(tenant_a.pk)
    second = refresh_tenant_task.run(tenant_a.pk)
    # then the first did the work and the second found nothing left
    assert first == {"tenant_id": tenant_a.pk, "days": 1, "failed": 0}
    assert second == {"tenant_id": tenant_a.pk, "days": 0, "failed": 0}
    assert _calls_on(tenant_a, dt.date(2026, 6, 1)) == 1
    with tenant_context(tenant_a):
        assert not DirtyDay.objects.exists()


@pytest.mark.django_db
def test_bursts_queue_one_refresh_until_it_starts(
    tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.clear()
    queued: list[int] = []
    monkeypatch.setattr(refresh_tenant_task, "delay", queued.append)
    # when three writes commit before the refresh starts
    assert scheduling.kpi_refresh_schedule(tenant_a.pk) is True
    assert scheduling.kpi_refresh_schedule(tenant_a.pk) is False
    assert scheduling.kpi_refresh_schedule(tenant_a.pk) is False
    # then one refresh is queued; once it starts, the next write queues another
    scheduling.kpi_refresh_started(tenant_a.pk)
    assert scheduling.kpi_refresh_schedule(tenant_a.pk) is True
    assert queued == [tenant_a.pk, tenant_a.pk]


@pytest.mark.django_db
def test_sweep_queues_only_tenants_with_dirty_days(
    tenant_a: Any, tenant_b: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.clear()
    queued: list[int] = []
    monkeypatch.setattr(refresh_tenant_task, "delay", queued.append)
    with tenant_context(tenant_b):
        DirtyDay.objects.create(tenant=tenant_b, day=dt.date(2026, 6, 1))
    assert refresh_dirty_sweep_task.run() == [tenant_b.pk]
    assert queued == [tenant_b.pk]


@pytest.mark.django_db(transaction=True)
def test_commit_of_a_write_refreshes_its_snapshots_eagerly_without_a_broker(
    tenant_a: Any, settings: Any
) -> None:
    if not app.conf.task_always_eager:
        pytest.skip("eager mode only (no broker configured)")
    cache.clear()
    _call(tenant_a)
    assert _calls_on(tenant_a, dt.date(2026, 6, 1)) == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_warm_builds_the_open_periods_after_a_rebuild(tenant_a: Any) -> None:
    _call(tenant_a)
    with tenant_context(tenant_a):
        kpi_snapshots_rebuild(tenant=tenant_a)
        assert KpiMemberPeriod.objects.count() == 0
        built = kpi_snapshots_warm(tenant=tenant_a, today=dt.date(2026, 6, 2))
        # week, month, quarter and year of 2 June (the latest data day is in the same ones)
        assert built == 4
        assert kpi_snapshots_warm(tenant=tenant_a, today=dt.date(2026, 6, 2)) == 0


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_committed_write_is_visible_after_a_real_worker_refresh(tenant_a: Any) -> None:
    from celery.contrib.testing.worker import start_worker

    cache.clear()
    assert not app.conf.task_always_eager
    with start_worker(app, perform_ping_check=False, pool="solo", concurrency=1):
        # when a write commits (its on-commit hook queues the refresh on the broker)
        _call(tenant_a)
        deadline = time.monotonic() + 20
        while _calls_on(tenant_a, dt.date(2026, 6, 1)) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    # then the worker refreshed the day
    assert _calls_on(tenant_a, dt.date(2026, 6, 1)) == 1
    with tenant_context(tenant_a):
        assert not DirtyDay.objects.exists()


@pytest.mark.django_db
def test_a_refresh_that_dies_midway_changes_nothing_and_leaves_the_days_dirty(
    tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kpis.snapshots import writing

    # given refreshed snapshots and then a new call on the same day
    _call(tenant_a)
    refresh_tenant_task.run(tenant_a.pk)
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="B社", created_at=AT)
        pipeline_services.activity_create(tenant=tenant_a, lead=lead, type="call", occurred_at=AT)
        before = list(KpiSnapshot.objects.order_by("pk").values_list("pk", "calls"))

    # when the worker dies after writing the day rows but before the coarser periods
    def die(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(writing, "write_periods", die)
    with pytest.raises(SystemExit):
        refresh_tenant_task.run(tenant_a.pk)
    # then readers still see the old snapshot and the day is still dirty for the next run
    with tenant_context(tenant_a):
        assert list(KpiSnapshot.objects.order_by("pk").values_list("pk", "calls")) == before
        assert DirtyDay.objects.filter(day=dt.date(2026, 6, 1)).exists()
    monkeypatch.undo()
    refresh_tenant_task.run(tenant_a.pk)
    assert _calls_on(tenant_a, dt.date(2026, 6, 1)) == 2


@pytest.fixture
def queued_rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The tenant ids of the rebuilds queued (not run) during the test."""
    from kpis.tasks import rebuild_tenant_task

    cache.clear()
    queued: list[int] = []
    monkeypatch.setattr(rebuild_tenant_task, "delay", queued.append)
    return queued


def _rep_with_a_refreshed_call(tenant: Any, team: Any, username: str, capture: Any) -> Any:
    """A rep of `team` (adding it queues nothing) with one call, refreshed."""
    from tenants import members
    from tenants.scopes import Role
    from tests.factories import UserFactory

    with capture(execute=True):
        rep = members.membership_add(
            tenant=tenant, user=UserFactory(username=username), role=Role.REP, team=team
        )
    with tenant_context(tenant):
        lead = pipeline_services.lead_create(tenant=tenant, company="A社", created_at=AT)
        pipeline_services.activity_create(
            tenant=tenant, lead=lead, rep=rep, type="call", occurred_at=AT
        )
    refresh_tenant_task.run(tenant.pk)
    return rep


def _month_calls(tenant: Any, scope_type: str) -> dict[str, int]:
    with tenant_context(tenant):
        return dict(
            KpiSnapshot.objects.filter(grain="month", scope_type=scope_type).values_list(
                "scope_key", "calls"
            )
        )


@pytest.mark.django_db
def test_moving_a_rep_to_another_team_refreshes_the_days_it_covers_without_a_rebuild(
    tenant_a: Any, queued_rebuilds: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    from tenants import members
    from tests.factories import TeamFactory

    east, west = (
        TeamFactory(tenant=tenant_a, name="East"),
        TeamFactory(tenant=tenant_a, name="West"),
    )
    # given a rep of East with a call on 1 June, refreshed
    rep = _rep_with_a_refreshed_call(tenant_a, east, "moved", django_capture_on_commit_callbacks)
    assert _month_calls(tenant_a, "team") == {str(east.pk): 1}
    # when the rep is saved unchanged, moved today (after the call), then from 1 June
    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        rep.save()
        rep.team = west
        rep.save()
    refresh_tenant_task.run(tenant_a.pk)
    assert _month_calls(tenant_a, "team") == {str(east.pk): 1}
    with django_capture_on_commit_callbacks(execute=True):
        members.member_update(membership=rep, team=west, team_effective_from="2026-06-01")
    # then no rebuild is queued, and the refresh of the marked day moves the call to West
    refresh_tenant_task.run(tenant_a.pk)
    assert queued_rebuilds == []
    assert _month_calls(tenant_a, "team") == {str(west.pk): 1}


@pytest.mark.django_db
def test_deleting_a_team_refreshes_its_days_without_a_rebuild_and_drops_its_numbers(
    tenant_a: Any,
    tenant_b: Any,
    queued_rebuilds: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.factories import TeamFactory

    east = TeamFactory(tenant=tenant_a, name="East")
    other = TeamFactory(tenant=tenant_b, name="Other")
    # given a rep of East with a call, refreshed
    rep = _rep_with_a_refreshed_call(tenant_a, east, "kept", django_capture_on_commit_callbacks)
    assert _month_calls(tenant_a, "team") == {str(east.pk): 1}
    # when East is deleted (as the admin does), and a team of another tenant too
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(tenant_a):
            east.delete()
        with tenant_context(tenant_b):
            other.delete()
    # then no rebuild is queued; the refresh of East's days drops East and keeps the call
    assert queued_rebuilds == []
    refresh_tenant_task.run(tenant_a.pk)
    assert _month_calls(tenant_a, "team") == {}
    assert _month_calls(tenant_a, "rep") == {str(rep.pk): 1}
    assert _month_calls(tenant_a, "tenant") == {"": 1}


def test_a_rebuild_in_a_transaction_that_wrote_rows_reads_them_on_one_connection(
    tenant_a: Any,
) -> None:
    # given a lead, its MQL transition and a call, written in this (uncommitted) transaction
    with tenant_context(tenant_a):
        lead = pipeline_services.lead_create(tenant=tenant_a, company="A社", created_at=AT)
        pipeline_services.lead_transition(lead=lead, to_stage="mql", at=AT)
        pipeline_services.activity_create(tenant=tenant_a, lead=lead, type="call", occurred_at=AT)
        # when it is rebuilt asking for a side connection (which could not see them)
        kpi_snapshots_rebuild(tenant=tenant_a, side_connection=True)
        row = KpiSnapshot.objects.get(grain="month", period_start=AT.date(), scope_type="tenant")
    # then every measure counts them
    assert (row.leads_created, row.mqls, row.calls) == (1, 1, 1)
