"""App config for alerts: evaluates the rules after each snapshot refresh (kpis.hooks),
registers the alert event types with notifications, and bumps the tenant's KPI read version
on every write of alerts and rules (a cached dashboard shows its open alerts)."""

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

        from django.db.models.signals import post_delete, post_save

        from alerts.models import Alert, AlertRule
        from kpis.versions import bump_for_instance

        # Saves and deletes one by one (acknowledging, snoozing, assigning, rules); an
        # evaluation's bulk writes send no signal and bump themselves (alerts.evaluation).
        for model in (Alert, AlertRule):
            uid = f"alerts-read-version-{model._meta.label_lower}"
            post_save.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-save")
            post_delete.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-delete")
