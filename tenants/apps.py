"""App config for tenants: wires row-level security sync after migrations, and keeps each
member's team history in step with saves of the member."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Workspaces")

    def ready(self) -> None:
        from tenants import rls, team_history
        from tenants.models import Membership

        post_migrate.connect(rls.sync_after_migrate, dispatch_uid="tenants.rls.sync")
        post_save.connect(
            team_history.membership_saved,
            sender=Membership,
            dispatch_uid="tenants.team_history.saved",
        )
