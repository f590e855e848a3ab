"""Which of the tagger's labels a picture keeps.

The tagger names the 1,000 ImageNet classes, which were never meant to describe people: on
portraits its guesses include primates ("macaque" on an actor in a fur costume) and underwear
("brassiere" on a head-and-shoulders portrait). A picture keeps a label only when the tagger
is reasonably sure of it (``SIGHTLINE_TAG_MIN_PROBABILITY``); primate labels are never kept (a
face the detector missed must not let one through), and underwear and swimwear labels are not
kept on a picture with faces.
"""

from __future__ import annotations

from django.conf import settings

# ImageNet classes 365-384.
PRIMATES = frozenset({
    "orangutan", "gorilla", "chimpanzee", "gibbon", "siamang", "guenon", "patas", "baboon", "macaque", "langur",
    "colobus", "proboscis monkey", "marmoset", "capuchin", "howler monkey", "titi", "spider monkey",
    "squirrel monkey", "Madagascar cat", "indri",
})
NOT_ON_PEOPLE = frozenset({"bikini", "brassiere", "diaper", "maillot", "miniskirt", "swimming trunks"})


# Under this, a kept tag is shown as a guess: "more likely than not", not a figure fitted to photos.
LIKELY_PROBABILITY = 0.5


def labels_to_keep(tags: list[tuple[str, float]], has_faces: bool) -> list[tuple[str, float]]:
    """``tags`` (label, probability), most probable first, without the ones the picture must not carry."""
    refused = PRIMATES | NOT_ON_PEOPLE if has_faces else PRIMATES
    return [(label, probability) for label, probability in tags
            if probability >= settings.SIGHTLINE_TAG_MIN_PROBABILITY and label not in refused]
