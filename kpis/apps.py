"""App config for kpis: refreshes snapshots on dirty days (a rep's team move marks the days
it covers), rebuilds them when a team is deleted, the tenant's calendar or a deal stage's
meaning changes; gives new tenants a default tree."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KpisConfig(AppConfig):
    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("KPIs")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_save

        import kpis.tasks  # noqa: F401  (registered before a service queues one by name)
        from kpis.refresh import (
            DEAL_STAGE_MEANING,
            TENANT_CALENDAR,
            kpi_refresh_schedule,
            team_deleted,
        )
        from kpis.trees import kpi_tree_seed_default
        from pipeline.dirty import register_dirty_listener
        from pipeline.models import DealStage
        from tenants.hooks import register_tenant_created
        from tenants.models import Team, Tenant

        register_dirty_listener(kpi_refresh_schedule)
        register_tenant_created(kpi_tree_seed_default)
        for watcher, model, name in (
            (TENANT_CALENDAR, Tenant, "calendar"),
            (DEAL_STAGE_MEANING, DealStage, "deal-stage"),
        ):
            pre_save.connect(watcher.remember, sender=model, dispatch_uid=f"kpis-{name}-before")
            post_save.connect(watcher.compare, sender=model, dispatch_uid=f"kpis-{name}-after")
        post_delete.connect(team_deleted, sender=Team, dispatch_uid="kpis-team-deleted")
