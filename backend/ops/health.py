"""Liveness (/healthz) and readiness (/readyz) probes for docker-compose and Kubernetes.

Both answer before any other middleware runs (ProbeMiddleware): no session, no tenant, no
transaction, no host check (a Kubernetes probe comes with the pod's IP as its host), and
nothing that could depend on the database for /healthz. /readyz shows each check's status
and time and counts only: no tenant, no host name, no error message from a backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger("backend.health")

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
_PROBE_KEY = "ops:readiness-probe"


class CheckFailed(Exception):
    """A check ran and its answer is "not ready" (the message is safe to show)."""


@dataclass
class CheckResult:
    status: str  # "ok", "fail" or "skipped"
    ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "ms": self.ms, **self.details}


def check_database() -> dict[str, Any]:
    """The app role (the "default" alias) can run a statement."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone()[0] != 1:
            raise CheckFailed("unexpected answer")
    return {}


def check_cache() -> dict[str, Any] | None:
    """The shared cache (Redis) answers a write and a read; skipped for in-process memory."""
    if "locmem" in settings.CACHES["default"]["BACKEND"].lower():
        return None
    value = str(time.time())
    cache.set(_PROBE_KEY, value, timeout=30)
    if cache.get(_PROBE_KEY) != value:
        raise CheckFailed("the cache did not return what was written")
    return {}


def check_broker() -> dict[str, Any] | None:
    """The Celery broker accepts a connection; skipped in eager mode (no broker)."""
    if not settings.CELERY_BROKER_URL:
        return None
    from kombu import Connection

    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=timeout,
        transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout},
    ) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=timeout
        )
    return {}


def check_worker_heartbeat() -> dict[str, Any] | None:
    """A worker ran the beat's heartbeat task recently; skipped without a broker or when
    HEALTH_WORKER_HEARTBEAT_MAX_AGE is 0."""
    from backend.ops.heartbeat import heartbeat_age

    max_age = settings.HEALTH_WORKER_HEARTBEAT_MAX_AGE
    if not settings.CELERY_BROKER_URL or max_age <= 0:
        return None
    age = heartbeat_age()
    if age is None:
        raise CheckFailed("no worker heartbeat seen yet")
    details = {"age_seconds": round(age, 1), "max_age_seconds": max_age}
    if age > max_age:
        raise CheckFailed("worker heartbeat too old", details)
    return details


def check_refresh_backlog() -> dict[str, Any]:
    """Dirty days due now and failed ones, over all tenants (counts only). Fails only past
    HEALTH_MAX_DUE_DIRTY_DAYS, when that is set."""
    from pipeline.cross_tenant import dirty_day_backlog

    due, failed = dirty_day_backlog()
    details = {"due": due, "failed": failed}
    limit = settings.HEALTH_MAX_DUE_DIRTY_DAYS
    if limit and due > limit:
        raise CheckFailed(f"more than {limit} dirty days due", details)
    return details


READINESS_CHECKS: dict[str, Callable[[], dict[str, Any] | None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "worker_heartbeat": check_worker_heartbeat,
    "refresh_backlog": check_refresh_backlog,
}


def run_check(check: Callable[[], dict[str, Any] | None]) -> CheckResult:
    started = time.perf_counter()
    try:
        details = check()
    except CheckFailed as failure:
        status = "fail"
        message, *extra = failure.args
        details = {"error": message, **(extra[0] if extra else {})}
    except Exception as error:  # any error means "not ready"
        # NOTE: the class name only: a backend's message may name hosts or users.
        status, details = "fail", {"error": type(error).__name__}
    else:
        status = "skipped" if details is None else "ok"
    ms = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(status=status, ms=ms, details=details or {})


def readiness() -> tuple[bool, dict[str, Any]]:
    """(ready, the JSON body): ready when no check failed."""
    results = {name: run_check(check) for name, check in READINESS_CHECKS.items()}
    ready = all(result.status != "fail" for result in results.values())
    return ready, {
        "status": "ok" if ready else "fail",
        "checks": {name: result.as_json() for name, result in results.items()},
    }


def liveness_view(request: HttpRequest) -> HttpResponse:
    """The process answers: nothing else is consulted."""
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


def readiness_view(request: HttpRequest) -> HttpResponse:
    ready, body = readiness()
    if not ready:
        failed = sorted(name for name, check in body["checks"].items() if check["status"] == "fail")
        logger.warning("not ready: %s", ", ".join(failed), extra={"failed_checks": failed})
    response = JsonResponse(body, status=200 if ready else 503)
    # NOTE: logged just above (and by the request line): not again by django.request.
    response._has_been_logged = True  # type: ignore[attr-defined]
    add_never_cache_headers(response)
    return response


_PROBES = {
    LIVENESS_PATH: liveness_view,
    LIVENESS_PATH + "/": liveness_view,
    READINESS_PATH: readiness_view,
    READINESS_PATH + "/": readiness_view,
}


class ProbeMiddleware:
    """Answers GET/HEAD on the probe paths first, before sessions, tenants and host checks."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _PROBES.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)
