"""Liveness and readiness probes: each check failing, the JSON shape, no tenant data."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone

from backend.ops import health
from backend.ops.heartbeat import heartbeat_write
from pipeline.models import DirtyDay
from tenants.context import tenant_context

CHECKS = ["database", "cache", "broker", "worker_heartbeat", "refresh_backlog"]


@pytest.fixture
def no_broker(settings: Any) -> None:
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def backlog(tenant_a: Any, tenant_b: Any) -> None:
    """tenant_a: one day due, one failed day waiting for its retry; tenant_b: one day due."""
    now = timezone.now()
    with tenant_context(tenant_a):
        DirtyDay.objects.create(tenant=tenant_a, day=dt.date(2026, 6, 1))
        DirtyDay.objects.create(
            tenant=tenant_a,
            day=dt.date(2026, 6, 2),
            attempts=1,
            failed_at=now,
            retry_at=now + dt.timedelta(hours=1),
            error="boom",
        )
    with tenant_context(tenant_b):
        DirtyDay.objects.create(tenant=tenant_b, day=dt.date(2026, 6, 3))


def _get(path: str, **headers: str) -> tuple[int, dict[str, Any], Any]:
    response = Client().get(path, **headers)
    return response.status_code, json.loads(response.content), response


def test_liveness_answers_without_database_or_allowed_host(db: None, monkeypatch: Any) -> None:
    # given a database that refuses every connection
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    # when a probe asks with a host that is not allowed (a pod's IP)
    status, body, response = _get("/healthz", HTTP_HOST="10.1.2.3")
    monkeypatch.undo()
    # then the process says it is alive, uncached
    assert (status, body) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_with_every_check_and_the_backlog_counted_across_tenants(
    backlog: None, no_broker: None
) -> None:
    # when the probe runs (no broker: eager mode)
    status, body, _ = _get("/readyz", HTTP_HOST="10.1.2.3")
    # then it is ready; each check has a status and a time; the backlog is counts only
    assert status == 200
    assert body["status"] == "ok"
    assert list(body["checks"]) == CHECKS
    checks = body["checks"]
    assert all(isinstance(check["ms"], float) for check in checks.values())
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "skipped"
    assert checks["worker_heartbeat"]["status"] == "skipped"
    expected_cache = "skipped" if "locmem" in health.settings.CACHES["default"]["BACKEND"] else "ok"
    assert checks["cache"]["status"] == expected_cache
    assert {k: v for k, v in checks["refresh_backlog"].items() if k != "ms"} == {
        "status": "ok",
        "due": 2,
        "failed": 1,
    }


@pytest.mark.django_db
def test_database_down_is_not_ready_and_says_no_more_than_the_error_class(
    backlog: None, no_broker: None, monkeypatch: Any
) -> None:
    # given a database that refuses every connection
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError('connection to server at "db.internal" (10.0.0.5) failed')

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    # when the probe runs
    status, body, response = _get("/readyz")
    monkeypatch.undo()
    # then 503, with the database and the backlog failed, and no host name shown
    assert status == 503
    assert body["status"] == "fail"
    assert {k: v for k, v in body["checks"]["database"].items() if k != "ms"} == {
        "status": "fail",
        "error": "OperationalError",
    }
    assert body["checks"]["refresh_backlog"]["status"] == "fail"
    assert b"db.internal" not in response.content


@pytest.mark.django_db
def test_broker_down_is_not_ready(settings: Any) -> None:
    # given a broker URL nothing listens on
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.HEALTH_WORKER_HEARTBEAT_MAX_AGE = 300
    started = time.monotonic()
    # when the probe runs
    status, body, _ = _get("/readyz")
    # then 503 quickly: the broker failed and no worker heartbeat was seen
    assert time.monotonic() - started < 5
    assert status == 503
    assert body["checks"]["broker"]["status"] == "fail"
    assert body["checks"]["broker"]["error"] == "OperationalError"
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_worker_heartbeat_fresh_stale_and_missing(settings: Any) -> None:
    from django.core.cache import cache

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # only its presence matters here
    settings.HEALTH_WORKER_HEARTBEAT_MAX_AGE = 60
    cache.delete("ops:worker-heartbeat")
    # missing
    result = health.run_check(health.check_worker_heartbeat)
    assert (result.status, result.details) == ("fail", {"error": "no worker heartbeat seen yet"})
    # stale: two minutes old
    heartbeat_write(at=time.time() - 120)
    result = health.run_check(health.check_worker_heartbeat)
    assert result.status == "fail"
    assert result.details["error"] == "worker heartbeat too old"
    assert result.details["max_age_seconds"] == 60
    assert 119 <= result.details["age_seconds"] <= 125
    # fresh: written by the task a worker runs
    from backend.ops.heartbeat import worker_heartbeat_task

    worker_heartbeat_task.run()
    result = health.run_check(health.check_worker_heartbeat)
    assert result.status == "ok"
    assert result.details["age_seconds"] < 5
    # switched off
    settings.HEALTH_WORKER_HEARTBEAT_MAX_AGE = 0
    assert health.run_check(health.check_worker_heartbeat).status == "skipped"


@pytest.mark.django_db
def test_backlog_past_its_limit_is_not_ready(backlog: None, no_broker: None, settings: Any) -> None:
    settings.HEALTH_MAX_DUE_DIRTY_DAYS = 1
    status, body, _ = _get("/readyz")
    assert status == 503
    assert {k: v for k, v in body["checks"]["refresh_backlog"].items() if k != "ms"} == {
        "status": "fail",
        "error": "more than 1 dirty days due",
        "due": 2,
        "failed": 1,
    }


@pytest.mark.django_db
def test_readiness_shows_no_tenant_data(backlog: None, no_broker: None, tenant_a: Any) -> None:
    _, _, response = _get("/readyz")
    content = response.content.decode()
    for secret in (tenant_a.slug, tenant_a.name, "boom", "2026-06"):
        assert secret not in content


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_app_role_counts_the_backlog_only_through_the_narrow_function(backlog: None) -> None:
    from pipeline.cross_tenant import dirty_day_backlog

    # given the app role with no tenant set sees no dirty day at all (row-level security)
    with connections["default"].cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{DirtyDay._meta.db_table}"')
        assert cursor.fetchone() == (0,)
    # when it asks the backlog function; then it gets the counts over all tenants
    assert dirty_day_backlog() == (2, 1)


@pytest.mark.skipif(
    not health.settings.CELERY_BROKER_URL, reason="needs a real broker (CELERY_BROKER_URL)"
)
@pytest.mark.django_db
def test_a_reachable_broker_and_fresh_heartbeat_are_ready(backlog: None) -> None:
    heartbeat_write()
    status, body, _ = _get("/readyz")
    assert status == 200
    assert body["checks"]["broker"]["status"] == "ok"
    assert body["checks"]["worker_heartbeat"]["status"] == "ok"
