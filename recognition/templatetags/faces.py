"""Template filters that put face matching into plain words."""

from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()

# Fractions of the match threshold: a distance well under it is a confident match, one just
# under it a hesitant one (dlib's same-person distances mostly lie between 0.3 and 0.5).
CONFIDENCE_LEVELS = ((0.67, "high confidence"), (0.85, "medium confidence"))


@register.filter
def confidence(distance) -> str:
    """``0.31`` → "high confidence", relative to ``SIGHTLINE_MATCH_THRESHOLD``."""
    if distance is None:
        return ""
    threshold = settings.SIGHTLINE_MATCH_THRESHOLD
    if distance > threshold:
        return "no match"
    for fraction, words in CONFIDENCE_LEVELS:
        if distance <= fraction * threshold:
            return words
    return "low confidence"


@register.simple_tag
def match_threshold() -> str:
    return f"{settings.SIGHTLINE_MATCH_THRESHOLD:.2f}"
