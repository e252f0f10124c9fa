"""The test app's config: it registers its measures when Django starts, as any app does."""

from django.apps import AppConfig


class MeasureAppConfig(AppConfig):
    name = "tests.measure_app"
    label = "measure_app"

    def ready(self) -> None:
        from tests.measure_app.measures import register

        register()
