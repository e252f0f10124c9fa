"""App config for alerts: evaluates the rules after each snapshot refresh (kpis.hooks) and
registers the alert event types with notifications."""

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import alerts.tasks  # noqa: F401  (registered before a service queues one by name)
        from alerts.scheduling import alerts_periods_refreshed
        from kpis.hooks import register_periods_refreshed

        register_periods_refreshed(alerts_periods_refreshed)

        from alerts.notifying import alert_event_types_register

        alert_event_types_register()
