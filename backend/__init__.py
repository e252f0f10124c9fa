"""Django project package: settings, URLs, the Celery app and the root GraphQL schema."""

from backend.celery import app as celery_app

__all__ = ("celery_app",)
