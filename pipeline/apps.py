"""App config for pipeline: seeds a new tenant's deal stages."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Pipeline data")

    def ready(self) -> None:
        import pipeline.tasks  # noqa: F401  (registered before a service queues one by name)
        from pipeline.cross_tenant import dirty_day_functions_register
        from pipeline.defaults import deal_stages_seed_defaults
        from tenants.hooks import register_tenant_created

        register_tenant_created(deal_stages_seed_defaults)
        dirty_day_functions_register()
