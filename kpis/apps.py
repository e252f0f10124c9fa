"""App config for kpis: refreshes snapshots on dirty days (a rep's team move or a team's
deletion marks the days it covers), rebuilds them when the tenant's calendar or a deal stage's
meaning changes; gives new tenants a default tree; bumps the tenants' KPI read versions
(kpis.versions)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KpisConfig(AppConfig):
    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("KPIs")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save, pre_save

        import kpis.tasks  # noqa: F401  (registered before a service queues one by name)
        from kpis.models import (
            KpiCustomDefinition,
            KpiMeasureValue,
            KpiSnapshot,
            KpiTarget,
            KpiTree,
            KpiTreeNode,
        )
        from kpis.snapshots.scheduling import (
            DEAL_STAGE_MEANING,
            TENANT_CALENDAR,
            kpi_refresh_schedule,
        )
        from kpis.trees import kpi_tree_seed_default
        from kpis.versions import bump_for_instance, bump_for_tenant_id, bump_for_user
        from pipeline.dirty import register_dirty_listener, register_marked_listener
        from pipeline.models import DealStage, DirtyDay
        from tenants.hooks import register_tenant_created
        from tenants.models import Membership, Team, Tenant, TenantClosure

        register_dirty_listener(kpi_refresh_schedule)
        register_marked_listener(bump_for_tenant_id)
        # What a KPI read reads besides snapshots and dirty marks (kpis.versions).
        for model in (
            KpiTarget, KpiTree, KpiTreeNode, KpiCustomDefinition,
            Tenant, TenantClosure, Membership, Team, DealStage,
        ):  # fmt: skip
            uid = f"kpis-read-version-{model._meta.label_lower}"
            post_save.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-save")
            post_delete.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-delete")
        user = get_user_model()
        post_save.connect(bump_for_user, sender=user, dispatch_uid="kpis-read-version-user")
        # Rows written through the ORM one by one (the admin, fixtures); the refreshes write
        # these in bulk under lock_tenant, which bumps. NOTE: no post_delete, which would
        # make Django fetch every row of a bulk delete to signal it.
        for model in (KpiSnapshot, KpiMeasureValue, DirtyDay):
            uid = f"kpis-read-version-{model._meta.label_lower}"
            post_save.connect(bump_for_instance, sender=model, dispatch_uid=f"{uid}-save")
        register_tenant_created(kpi_tree_seed_default)
        for watcher, model, name in (
            (TENANT_CALENDAR, Tenant, "calendar"),
            (DEAL_STAGE_MEANING, DealStage, "deal-stage"),
        ):
            pre_save.connect(watcher.remember, sender=model, dispatch_uid=f"kpis-{name}-before")
            post_save.connect(watcher.compare, sender=model, dispatch_uid=f"kpis-{name}-after")
