from django.apps import AppConfig


class SightlineConfig(AppConfig):
    """Project-wide pieces that belong to no app: health, logging, `manage.py serve`."""

    name = "config"
    label = "sightline"
    verbose_name = "Sightline"
