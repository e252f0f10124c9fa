"""App config for handoff: qualifies leads after records arrive (pipeline.hooks), registers
the JSON-part validators of routing, SLA and return rules, the handoff event types with
notifications, and the routing admin."""

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

        # Importing registers each part's validator (handoff.validation).
        from handoff import admin_routing, routing, sla_rules, sla_tasks  # noqa: F401
        from handoff.notifying import handoff_event_types_register

        handoff_event_types_register()
