"""App config for reports: gives every new tenant its default dashboards (one per role)."""

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reports.dashboards import dashboards_seed_defaults
        from tenants.hooks import register_tenant_created

        register_tenant_created(dashboards_seed_defaults)
