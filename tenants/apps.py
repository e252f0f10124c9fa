"""App config for tenants: wires row-level security sync after migrations."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Workspaces")

    def ready(self) -> None:
        from tenants import rls

        post_migrate.connect(rls.sync_after_migrate, dispatch_uid="tenants.rls.sync")
