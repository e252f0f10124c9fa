"""App config for reports: gives every new tenant its default dashboards (one per role) and
registers the report.ready event type with notifications."""

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reports.dashboards import dashboards_seed_defaults
        from tenants.hooks import register_tenant_created

        register_tenant_created(dashboards_seed_defaults)

        from reports.delivery import report_event_type_register

        report_event_type_register()
