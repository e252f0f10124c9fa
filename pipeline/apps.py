"""App config for pipeline: seeds a new tenant's deal stages."""

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from pipeline.defaults import deal_stages_seed_defaults
        from tenants.hooks import register_tenant_created

        register_tenant_created(deal_stages_seed_defaults)
