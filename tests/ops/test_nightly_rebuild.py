"""The hourly rebuild_all queues each tenant at its own local night, once per night."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from kpis.snapshots.scheduling import kpi_rebuild_started
from kpis.tasks import rebuild_all_task, rebuild_tenant_task
from tests.factories import TenantFactory


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    cache.clear()
    ids: list[int] = []
    monkeypatch.setattr(rebuild_tenant_task, "delay", ids.append)
    return ids


@pytest.mark.django_db
def test_each_tenant_is_rebuilt_at_three_in_its_own_night_once(queued: list[int]) -> None:
    # given a Tokyo tenant (UTC+9), a New York one (UTC-5 in January), an inactive one
    tokyo = TenantFactory(slug="tokyo", timezone="Asia/Tokyo")
    new_york = TenantFactory(slug="nyc", timezone="America/New_York")
    closed = TenantFactory(slug="closed", timezone="Asia/Tokyo")
    closed.is_active = False
    closed.save(update_fields=["is_active"])
    # when the hourly task runs at 18:30 UTC (03:30 on 16 January in Tokyo)
    assert rebuild_all_task.run(now="2026-01-15T18:30:00+00:00") == [tokyo.pk]
    # and again in the same hour (a redelivery): nothing more
    assert rebuild_all_task.run(now="2026-01-15T18:45:00+00:00") == []
    # at 08:30 UTC the next morning it is 03:30 in New York only (every new tenant starts
    # marked changed, so each is rebuilt at its first night)
    assert rebuild_all_task.run(now="2026-01-16T08:30:00+00:00") == [new_york.pk]
    # at any other hour nobody
    assert rebuild_all_task.run(now="2026-01-16T12:30:00+00:00") == []
    # the next Tokyo night, once the first rebuild has started, queues Tokyo again
    kpi_rebuild_started(tokyo.pk)
    assert rebuild_all_task.run(now="2026-01-16T18:30:00+00:00") == [tokyo.pk]
    # then the rebuilds were queued exactly in that order, the inactive tenant never
    assert queued == [tokyo.pk, new_york.pk, tokyo.pk]


@pytest.mark.django_db
def test_summer_time_moves_the_utc_hour_not_the_local_one(queued: list[int]) -> None:
    new_york = TenantFactory(slug="nyc", timezone="America/New_York")  # UTC-4 in July
    assert rebuild_all_task.run(now="2026-07-15T08:30:00+00:00") == []
    assert rebuild_all_task.run(now="2026-07-15T07:30:00+00:00") == [new_york.pk]


def test_the_beat_runs_it_hourly_on_the_bulk_queue(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["kpis-rebuild-all-hourly"]
    assert entry["task"] == "kpis.rebuild_all"
    assert entry["schedule"].hour == set(range(24))
    assert entry["schedule"].minute == {30}
    assert settings.CELERY_TASK_ROUTES["kpis.rebuild_tenant"] == {"queue": "bulk"}
