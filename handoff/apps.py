"""App config for handoff: qualifies leads after records arrive (pipeline.hooks), registers
the JSON-part validators of routing, SLA and return rules, the handoff event types with
notifications, and the handoff measures and KPIs with kpis."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "handoff"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("MQL → SQL handoff")

    def ready(self) -> None:
        import handoff.tasks  # noqa: F401  (registered before a service queues one by name)
        from handoff.scheduling import handoff_records_arrived
        from pipeline.hooks import register_records_arrived

        register_records_arrived(handoff_records_arrived)

        # Importing registers each part's validator (handoff.validation).
        from handoff import routing, sla_rules  # noqa: F401
        from handoff.notifying import handoff_event_types_register

        handoff_event_types_register()

        # Speed-to-lead, SLA attainment, breaches and the return rate, as KPIs of every
        # tenant's catalogue (kpis.measures and kpis.catalogue registries).
        from handoff.measures import handoff_team_moved, register
        from tenants.team_history import register_team_moved

        register()
        register_team_moved(handoff_team_moved)
