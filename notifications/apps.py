"""App config for notifications: delivery of the events the apps above publish."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import notifications.tasks  # noqa: F401  (registered before a service queues one by name)
