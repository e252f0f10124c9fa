"""App config for pipeline: seeds a new tenant's deal stages; marks the days a team move or
a team's deletion re-attributes."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Pipeline data")

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        import pipeline.tasks  # noqa: F401  (registered before a service queues one by name)
        from pipeline.cross_tenant import dirty_day_functions_register
        from pipeline.defaults import deal_stages_seed_defaults
        from pipeline.team_moves import team_delete_mark_dirty, team_move_mark_dirty
        from tenants.hooks import register_tenant_created
        from tenants.models import Team
        from tenants.team_history import register_team_moved

        register_tenant_created(deal_stages_seed_defaults)
        register_team_moved(team_move_mark_dirty)
        pre_delete.connect(team_delete_mark_dirty, sender=Team, dispatch_uid="pipeline-team-delete")
        dirty_day_functions_register()
