"""Tags stored before recognition/tagging.py decided which labels a picture keeps: the same rule,
applied to the rows already there (with its values of the day, as a migration must)."""

from django.db import migrations
from django.db.models import Exists, OuterRef

MIN_PROBABILITY = 0.15
PRIMATES = [
    "orangutan", "gorilla", "chimpanzee", "gibbon", "siamang", "guenon", "patas", "baboon", "macaque", "langur",
    "colobus", "proboscis monkey", "marmoset", "capuchin", "howler monkey", "titi", "spider monkey",
    "squirrel monkey", "Madagascar cat", "indri",
]
NOT_ON_PEOPLE = ["bikini", "brassiere", "diaper", "maillot", "miniskirt", "swimming trunks"]


def drop_tags_not_to_keep(apps, schema_editor):
    ImageTag = apps.get_model("recognition", "ImageTag")
    Face = apps.get_model("recognition", "Face")
    ImageTag.objects.filter(probability__lt=MIN_PROBABILITY).delete()
    ImageTag.objects.filter(label__in=PRIMATES).delete()
    with_faces = Exists(Face.objects.filter(asset=OuterRef("asset")))
    ImageTag.objects.filter(with_faces, label__in=NOT_ON_PEOPLE).delete()


class Migration(migrations.Migration):
    dependencies = [("recognition", "0004_appearances_and_stored_crops")]

    operations = [migrations.RunPython(drop_tags_not_to_keep, migrations.RunPython.noop)]
