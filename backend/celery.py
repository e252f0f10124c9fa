"""The Celery app; configuration comes from Django settings (CELERY_* names)."""

import logging.config
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

# `include`: tasks outside the apps (the worker heartbeat that readiness reads).
app = Celery("backend", include=["backend.ops.heartbeat"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
if app.conf.task_always_eager and not app.conf.broker_url:
    # NOTE: eager tasks still take a producer to serialize their arguments; with no broker
    # at all kombu makes up an AMQP connection to localhost and warns on every command.
    # The in-process transport never connects anywhere.
    app.conf.broker_url = "memory://localhost/"


@signals.setup_logging.connect
def _logging_from_django_settings(**_: object) -> None:
    """Workers and beat log through Django's LOGGING (one handler, our format).

    TRICKY: with no receiver for this signal Celery installs handlers of its own next to
    Django's and every line printed twice (or in two formats).
    """
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


from backend.ops.logs import connect_task_signals  # noqa: E402

connect_task_signals()
