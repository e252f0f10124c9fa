"""App config for handoff: qualifies leads after records arrive (pipeline.hooks)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "handoff"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("MQL → SQL handoff")

    def ready(self) -> None:
        from handoff.scheduling import handoff_records_arrived
        from pipeline.hooks import register_records_arrived

        register_records_arrived(handoff_records_arrived)
