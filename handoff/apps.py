"""App config for handoff: registers the JSON-part validators of routing, SLA and return
rules, the handoff event types with notifications, and the routing admin."""

from django.apps import AppConfig


class HandoffConfig(AppConfig):
    name = "handoff"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers each part's validator (handoff.validation).
        from handoff import admin_routing, routing, sla_rules  # noqa: F401
        from handoff.notifying import handoff_event_types_register

        handoff_event_types_register()
