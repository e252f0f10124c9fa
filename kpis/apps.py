"""App config for kpis: refreshes snapshots on dirty days, rebuilds them when a rep changes
team, a team is deleted or the tenant's calendar changes; gives new tenants a default tree."""

from django.apps import AppConfig


class KpisConfig(AppConfig):
    name = "kpis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_save

        from kpis.refresh import (
            kpi_refresh_schedule,
            membership_team_moved,
            membership_team_watch,
            team_deleted,
            tenant_calendar_changed,
            tenant_calendar_watch,
        )
        from kpis.trees import kpi_tree_seed_default
        from pipeline.dirty import register_dirty_listener
        from tenants.hooks import register_tenant_created
        from tenants.models import Membership, Team, Tenant

        register_dirty_listener(kpi_refresh_schedule)
        register_tenant_created(kpi_tree_seed_default)
        pre_save.connect(membership_team_watch, sender=Membership, dispatch_uid="kpis-team-watch")
        post_save.connect(membership_team_moved, sender=Membership, dispatch_uid="kpis-team-moved")
        post_delete.connect(team_deleted, sender=Team, dispatch_uid="kpis-team-deleted")
        pre_save.connect(tenant_calendar_watch, sender=Tenant, dispatch_uid="kpis-calendar-watch")
        post_save.connect(
            tenant_calendar_changed, sender=Tenant, dispatch_uid="kpis-calendar-changed"
        )
