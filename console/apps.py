"""App config for the console: no models, no data access (the browser calls /graphql/)."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    default_auto_field = "django.db.models.BigAutoField"
