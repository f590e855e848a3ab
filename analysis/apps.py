from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from analysis import signals  # noqa: F401  (receivers that invalidate cached reports)
