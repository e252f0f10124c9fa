"""Queueing a Celery task by its registered name.

A service that schedules work (refresh a tenant, deliver a webhook) would otherwise import
its app's tasks module, which imports the service back: an import cycle. Each app's
AppConfig.ready() imports its tasks module, so every process (web, worker, beat, tests)
has the tasks registered before a service queues one; a registered task honours
CELERY_TASK_ALWAYS_EAGER as a direct import would.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from celery.result import AsyncResult


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> AsyncResult:
    """Queue the task registered as `task_name` with these arguments (routed by name)."""
    return current_app.tasks[task_name].delay(*args, **kwargs)
