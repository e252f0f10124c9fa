"""Fixtures of the notification tests: a local webhook receiver, eager tasks, members."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from notifications import services
from tenants import members
from tenants.context import tenant_context
from tenants.scopes import Role
from tests.factories import UserFactory


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server in a thread: answers with the next status of `statuses` (the
    last one repeats) and keeps every request."""

    url: str
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = state.statuses[min(len(state.requests), len(state.statuses)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/kpi?x=1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _notification_settings(settings: Any) -> Iterator[None]:
    """Local targets allowed (the receiver is on 127.0.0.1) and tasks run in-process, also
    on the PostgreSQL run, where a broker is configured."""
    from backend.celery import app

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = [60, 300, 1800]
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def member_factory() -> Any:
    def make(tenant: Any, username: str, role: str = Role.MANAGER, **more: Any) -> Any:
        user = UserFactory(username=username, email=f"{username}@example.com")
        return members.membership_add(tenant=tenant, user=user, role=role, **more)

    return make


def endpoint(tenant: Any, url: str, **more: Any) -> tuple[Any, str]:
    values = {"name": "hook", "event_types": ["alert.fired"]} | more
    with tenant_context(tenant):
        return services.webhook_endpoint_create(tenant=tenant, url=url, **values)


def publish(
    tenant: Any, *, key: str = "k1", recipients: list[int] | None = None, **more: Any
) -> Any:
    """Publish an alert.fired event with a minimal alert payload."""
    values: dict[str, Any] = {
        "event_type": "alert.fired",
        "payload": alert_payload(),
        "recipients": recipients or [],
        "channels": ["in_app", "webhook"],
        "dedup_key": key,
    } | more
    with tenant_context(tenant):
        return services.event_publish(tenant=tenant, **values)


def alert_payload(**alert: Any) -> dict[str, Any]:
    return {
        "currency": "JPY",
        "alert": {
            "id": "QWxlcnQ6MQ==",
            "state": "firing",
            "rule": {
                "id": "x",
                "name": "コネクト率 60%未満",
                "kind": "below_value",
                "threshold": "60.0000",
            },
            "kpi": "connect_rate",
            "kpiName": "コネクト率",
            "kpiNameEn": "Connect rate",
            "unit": "percent",
            "scope": {"type": "rep", "key": "7", "name": "Rita"},
            "grain": "month",
            "period": "2026-05",
            "periodStart": "2026-05-01",
            "periodEnd": "2026-05-31",
            "value": "40",
            "threshold": "60",
            "sample": "50",
            "explanation": {
                "value": "40",
                "threshold": "60",
                "sample": "50",
                "period": {
                    "label": "2026-05",
                    "start": "2026-05-01",
                    "end": "2026-05-31",
                    "workingDays": 18,
                    "elapsedWorkingDays": 11,
                },
            },
            "improvementAction": "架電時間帯を見直す",
            "firedAt": "2026-05-20T10:00:00+09:00",
            "resolvedAt": None,
        }
        | alert,
    }
