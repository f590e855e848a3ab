from django.apps import AppConfig


def stored_crops_in_use(names: list[str]) -> set[str]:
    """Of these stored names, the face crops and appearance frames rows still point at."""
    from recognition.models import Appearance, Face

    used = set(Face.objects.filter(crop__in=names).values_list("crop", flat=True))
    return used | set(Appearance.objects.filter(frame__in=names).values_list("frame", flat=True))


class RecognitionConfig(AppConfig):
    name = "recognition"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from media import services

        # A worker killed between writing crops and committing their rows leaves files behind.
        services.register_stored_folder("crops", stored_crops_in_use)
