"""App config for kpis."""

from django.apps import AppConfig


class KpisConfig(AppConfig):
    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"
