"""Structured logs: one line per HTTP request and per Celery task, as text or JSON."""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

request_logger = logging.getLogger("backend.request")
task_logger = logging.getLogger("backend.task")

# The current request's id, added to every log line written while it runs.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is kept only when it is short and plain (it ends up in every line).
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# The attributes every LogRecord has: anything else on a record came as `extra`.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
    }


class RequestIdFilter(logging.Filter):
    """Adds the current request id (if any) to every record, as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in _extra_fields(record).items() if v not in ("", None)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable: `time level logger message key=value ...` (the extras, sorted)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = " ".join(
            f"{key}={value}"
            for key, value in sorted(_extra_fields(record).items())
            if value not in ("", None)
        )
        if not extras:
            return text
        head, newline, tail = text.partition("\n")  # a traceback stays below the line
        return f"{head} {extras}{newline}{tail}"


def _principal_label(request: HttpRequest) -> str:
    """`token:<key id>` (never the secret), `user:<id>`, or `anonymous`."""
    principal = getattr(request, "principal", None)
    token = getattr(principal, "token", None)
    if token is not None:
        return f"token:{token.key_id}"
    user = getattr(principal, "user", None)
    if user is not None:
        return f"user:{user.pk}"
    return "anonymous"


class RequestLogMiddleware:
    """Writes one line per request (method, path, status, duration, tenant, principal,
    request id) and echoes the request id in the `X-Request-ID` response header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID_PATTERN.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            tenant = getattr(request, "tenant", None)
            status = response.status_code
            level = logging.INFO if status < 400 else logging.WARNING
            if status >= 500:
                level = logging.ERROR
            request_logger.log(
                level,
                "%s %s %s %.1fms",
                request.method,
                request.path,
                status,
                duration_ms,
                extra={
                    "event": "request",
                    "method": request.method,
                    # NOTE: the path only: a query string may carry anything.
                    "path": request.path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "tenant": getattr(tenant, "slug", ""),
                    "tenant_id": getattr(tenant, "pk", None),
                    "principal": _principal_label(request),
                    "request_id": request_id,
                },
            )
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            request_id_var.reset(token)


# --- Celery tasks ---------------------------------------------------------------------
_task_started: dict[str, float] = {}


def _tenant_id_argument(task: Any, args: Any, kwargs: Any) -> int | None:
    """The task's `tenant_id` argument, passed by position or by name (None if it has none)."""
    if kwargs and "tenant_id" in kwargs:
        return kwargs["tenant_id"]
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return None
    return bound.arguments.get("tenant_id")


def task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def task_finished(
    task_id: str | None = None,
    task: Any = None,
    args: Any = None,
    kwargs: Any = None,
    state: str | None = None,
    **_: Any,
) -> None:
    """One line per task run: name, tenant id argument, duration, final state."""
    started = _task_started.pop(task_id or "", None)
    # NOTE: only a task whose error propagated (eager mode) comes without a state.
    state = state or "FAILURE"
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    name = getattr(task, "name", "?")
    task_logger.log(
        logging.INFO if state == "SUCCESS" else logging.WARNING,
        "task %s %s",
        name,
        state,
        extra={
            "event": "task",
            "task": name,
            "task_id": task_id,
            "tenant_id": _tenant_id_argument(task, args, kwargs),
            "state": state,
            "duration_ms": duration_ms,
        },
    )


def connect_task_signals() -> None:
    """Log every task run (worker and eager mode alike: the signals fire in both)."""
    from celery import signals

    signals.task_prerun.connect(task_started, weak=False, dispatch_uid="ops-task-started")
    signals.task_postrun.connect(task_finished, weak=False, dispatch_uid="ops-task-finished")


def logging_config(*, level: str, log_format: str) -> dict[str, Any]:
    """The LOGGING setting: one handler, on the root logger only.

    TRICKY: Django's default configuration gives the `django` logger a console handler of
    its own (in debug mode) that also propagates to the root: every `django.*` line was
    printed twice. Here `django` and `django.server` keep no handler and propagate, so each
    line goes through the root handler once. (Celery leaves logging alone: backend/celery.py.)
    """
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "backend.ops.logs.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "backend.ops.logs.JsonFormatter"},
            "text": {"()": "backend.ops.logs.TextFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": [], "level": level, "propagate": True},
            # Our request line reports every 4xx already; 5xx keep Django's traceback.
            "django.request": {"handlers": [], "level": "ERROR", "propagate": True},
            # runserver's own access lines repeat ours (backend.request): errors only.
            "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
            "django.db.backends": {"level": "WARNING"},
        },
    }
