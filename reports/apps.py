"""App config for reports: gives every new tenant its default dashboards (one per role),
registers the report.ready event type with notifications, and lets `dashboard` queries be
served from the KPI response cache (kpis/graphql/tree_cache.py), bumping the tenant's KPI
read version on every write of a dashboard layout."""

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

        from django.db.models.signals import post_delete, post_save

        from kpis.graphql.tree_cache import register_cacheable_root
        from kpis.versions import bump_for_instance
        from reports.models import Dashboard, DashboardWidget
        from tenants.scopes import Scope

        # A dashboard reads, beyond what a KPI tree reads (kpis bumps those), its layout
        # here and the open alerts (alerts bumps those). Per member: personal dashboards
        # and the role's default depend on who asks.
        register_cacheable_root("dashboard", scope=Scope.KPIS_READ, per_member=True)
        # Every layout write saves or deletes a row (a reorder's bulk update and a default's
        # unset are followed by a save of their dashboard; the seed's bulk insert bumps).
        for model in (Dashboard, DashboardWidget):
            uid = f"reports-read-version-{model._meta.label_lower}"
            post_save.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-save")
            post_delete.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-delete")
