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


@register.filter
def decision(face) -> str:
    """Who decided what this face is, in words."""
    if face.dismissed:
        return "dismissed by you as not a face"
    if face.decided_by == "human":
        if face.subject_id is None:
            return "marked unknown by you"
        return "named by you" if face.subject.is_named else "put here by you"
    if face.subject_id is None:
        return "not recognised"
    if not face.subject.is_named:
        return "grouped automatically with similar faces"
    return "recognised automatically"


@register.filter
def person_label(subject) -> str:
    """A person as lists show them: the name, or "Unnamed person (n faces)"."""
    if subject.is_named:
        return subject.name
    count = getattr(subject, "face_count", None)
    return f"Unnamed person {subject.pk}" + (f" ({count} face{'s' * (count != 1)})" if count is not None else "")
