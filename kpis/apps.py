"""App config for kpis: refreshes snapshots whenever pipeline writes mark days dirty."""

from django.apps import AppConfig


class KpisConfig(AppConfig):
    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kpis.refresh import kpi_refresh_schedule
        from pipeline.dirty import register_dirty_listener

        register_dirty_listener(kpi_refresh_schedule)
