"""App config for kpis: refreshes snapshots on dirty days; gives new tenants a default tree."""

from django.apps import AppConfig


class KpisConfig(AppConfig):
    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kpis.refresh import kpi_refresh_schedule
        from kpis.trees import kpi_tree_seed_default
        from pipeline.dirty import register_dirty_listener
        from tenants.hooks import register_tenant_created

        register_dirty_listener(kpi_refresh_schedule)
        register_tenant_created(kpi_tree_seed_default)
