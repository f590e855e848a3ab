"""The labels a picture keeps: sure ones, never a primate, no underwear on a picture of people."""

from recognition import tagging


def test_unsure_labels_are_dropped_and_the_order_kept(settings):
    settings.SIGHTLINE_TAG_MIN_PROBABILITY = 0.15
    tags = [("groom", 0.70), ("suit", 0.15), ("mortarboard", 0.01)]
    assert tagging.labels_to_keep(tags, has_faces=True) == [("groom", 0.70), ("suit", 0.15)]


def test_primates_are_never_kept_faces_or_not(settings):
    settings.SIGHTLINE_TAG_MIN_PROBABILITY = 0.0
    tags = [("fur coat", 0.9), ("macaque", 0.5), ("titi", 0.3)]
    assert tagging.labels_to_keep(tags, has_faces=True) == [("fur coat", 0.9)]
    assert tagging.labels_to_keep(tags, has_faces=False) == [("fur coat", 0.9)]


def test_underwear_and_swimwear_are_kept_only_without_faces(settings):
    settings.SIGHTLINE_TAG_MIN_PROBABILITY = 0.0
    tags = [("brassiere", 0.4), ("maillot", 0.3), ("wool", 0.2)]
    assert tagging.labels_to_keep(tags, has_faces=True) == [("wool", 0.2)]
    assert tagging.labels_to_keep(tags, has_faces=False) == tags  # a shop's product photo


def test_the_refused_labels_are_the_taggers_own_names():
    from recognition.engine.tagger import CATEGORIES

    assert tagging.PRIMATES | tagging.NOT_ON_PEOPLE <= set(CATEGORIES)
