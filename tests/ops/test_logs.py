"""One structured line per request and per task; every line printed once."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client

from backend.ops.logs import JsonFormatter, TextFormatter, logging_config
from tenants import services
from tenants.tasks import workspace_summary_task

ME = '{"query": "{ me { authKind } }"}'


def _lines(caplog: Any, logger: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == logger]


@pytest.mark.django_db
def test_a_token_request_writes_one_line_with_its_tenant_and_key_id_never_the_secret(
    tenant_a: Any, tenant_b: Any, caplog: Any
) -> None:
    # given a token of tenant_a
    token, secret = services.api_token_create(tenant=tenant_a, name="p", scopes=["kpis:read"])
    caplog.set_level(logging.INFO)
    # when it makes a request with its own request id
    response = Client().post(
        "/graphql/?access=x",
        ME,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_X_REQUEST_ID="req-42",
    )
    # then exactly one request line, with every field, and the id echoed back
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42"
    [line] = _lines(caplog, "backend.request")
    assert line.levelname == "INFO"
    fields = {
        key: getattr(line, key)
        for key in ("event", "method", "path", "status", "tenant", "tenant_id", "principal")
    }
    assert fields == {
        "event": "request",
        "method": "POST",
        "path": "/graphql/",
        "status": 200,
        "tenant": "acme",
        "tenant_id": tenant_a.pk,
        "principal": f"token:{token.key_id}",
    }
    assert line.request_id == "req-42"
    assert isinstance(line.duration_ms, float) and line.duration_ms >= 0
    # and the secret appears in no line, formatted either way
    for record in caplog.records:
        for formatter in (JsonFormatter(), TextFormatter()):
            assert secret not in formatter.format(record)
            assert secret.split("_")[-1] not in formatter.format(record)


@pytest.mark.django_db
def test_a_signed_in_user_is_logged_by_id_and_a_refusal_as_a_warning(
    admin_a: Any, tenant_a: Any, caplog: Any
) -> None:
    client = Client()
    client.force_login(admin_a)
    caplog.set_level(logging.INFO)
    # when the admin reads, then an anonymous client is refused
    client.post("/graphql/", ME, content_type="application/json", HTTP_X_TENANT="acme")
    Client().post("/graphql/", ME, content_type="application/json", HTTP_AUTHORIZATION="Bearer x")
    # then one line each: the user by id; the refusal (401) as a warning, no tenant
    user_line, refused_line = _lines(caplog, "backend.request")
    assert (user_line.principal, user_line.tenant, user_line.status) == (
        f"user:{admin_a.pk}",
        "acme",
        200,
    )
    assert (refused_line.levelname, refused_line.status, refused_line.principal) == (
        "WARNING",
        401,
        "anonymous",
    )
    assert refused_line.tenant == ""
    # a request id was made up for each, and they differ
    assert len(user_line.request_id) == 32 and user_line.request_id != refused_line.request_id


@pytest.mark.django_db
def test_an_unsafe_request_id_is_replaced(caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    response = Client().get("/healthz/nope", HTTP_X_REQUEST_ID="x\ninjected=1")
    [line] = _lines(caplog, "backend.request")
    assert line.request_id != "x\ninjected=1"
    assert response["X-Request-ID"] == line.request_id


@pytest.mark.django_db
def test_a_task_run_writes_one_line_with_its_tenant_duration_and_state(
    tenant_a: Any, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    # when a task runs (locally, through Celery's tracer: the same signals as in a worker)
    workspace_summary_task.apply(args=[tenant_a.pk])
    # then one line with the task, its tenant argument, duration and state
    [line] = _lines(caplog, "backend.task")
    assert (line.event, line.task, line.tenant_id, line.state, line.levelname) == (
        "task",
        "tenants.workspace_summary",
        tenant_a.pk,
        "SUCCESS",
        "INFO",
    )
    assert isinstance(line.duration_ms, float)


@pytest.mark.django_db
def test_a_failing_task_is_logged_as_a_failure(caplog: Any) -> None:
    from kpis.tasks import rebuild_tenant_task

    caplog.set_level(logging.INFO)
    with pytest.raises(Exception):  # noqa: B017 - the tenant does not exist
        rebuild_tenant_task.apply(kwargs={"tenant_id": 987654})
    [line] = _lines(caplog, "backend.task")
    assert (line.task, line.tenant_id, line.state, line.levelname) == (
        "kpis.rebuild_tenant",
        987654,
        "FAILURE",
        "WARNING",
    )


def test_json_lines_carry_time_level_and_the_extras() -> None:
    record = logging.LogRecord("backend.request", logging.INFO, __file__, 1, "GET / 200", (), None)
    record.status, record.tenant, record.request_id = 200, "acme", "r1"
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == {"time", "level", "logger", "message", "status", "tenant", "request_id"}
    assert (line["level"], line["logger"], line["status"], line["tenant"]) == (
        "INFO",
        "backend.request",
        200,
        "acme",
    )
    assert line["time"].endswith("+00:00")
    assert TextFormatter().format(record).endswith("GET / 200 request_id=r1 status=200 tenant=acme")


def _handlers_reached(name: str) -> list[logging.Handler]:
    """The handlers that print a record of logger `name` (as Logger.callHandlers walks)."""
    handlers: list[logging.Handler] = []
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        handlers.extend(h for h in logger.handlers if not isinstance(h, logging.NullHandler))
        logger = logger.parent if logger.propagate else None
    return handlers


@pytest.mark.parametrize(
    "name", ["django.request", "django.template", "django.server", "backend.request", "celery"]
)
def test_every_line_goes_through_exactly_one_handler(name: str, settings: Any) -> None:
    # given the logging of a debug-mode process, then of a Celery worker (which answers
    # setup_logging with Django's configuration instead of adding handlers of its own)
    from celery import signals

    from backend.celery import _logging_from_django_settings

    logging.config.dictConfig(logging_config(level="INFO", log_format="text"))
    assert len(_handlers_reached(name)) == 1
    assert signals.setup_logging.receivers
    _logging_from_django_settings()
    # then a line of any of these loggers is printed once
    assert len(_handlers_reached(name)) == 1
    assert settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False
