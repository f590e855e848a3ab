"""Template filters that put face matching into plain words."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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
    count = getattr(subject, "listed_count", None)  # as the person's page counts them
    return f"Unnamed person {subject.pk}" + (f" ({count} face{'s' * (count != 1)})" if count is not None else "")


@register.simple_tag
def face_crop(face, alt: str = "", lazy: bool = True):
    """The face's stored crop, or a placeholder saying it is on its way: a face found by a
    realtime request (an enrolment) is shown before its job has stored the crop."""
    if not face.crop:
        return format_html('<span class="face-crop face-missing" role="img" aria-label="{}" title="{}">…</span>',
                           alt or "A face", "The picture of this face is still being prepared.")
    return format_html('<img class="face-crop" src="{}" alt="{}"{}>', reverse("face-crop", args=[face.pk]), alt,
                       mark_safe(' loading="lazy"') if lazy else "")


@register.filter
def numbered_alt(face, number) -> str:
    """A face's crop described for screen readers: "Face 2: Barack Obama", or "Face 2"."""
    return f"Face {number}: {person_label(face.subject)}" if face.subject_id else f"Face {number}"


@register.filter
def time_span(appearance) -> str:
    """When a track is seen: "1.5–4.0 s", or "at 1.5 s" for a track seen in one sampled frame."""
    start, end = f"{appearance.start_seconds:.1f}", f"{appearance.end_seconds:.1f}"
    return f"at {start} s" if start == end else f"{start}–{end} s"


@register.filter
def time_span_words(appearance) -> str:
    """``time_span`` for screen readers: "from 1.5 s to 4.0 s", or "at 1.5 s"."""
    start, end = f"{appearance.start_seconds:.1f}", f"{appearance.end_seconds:.1f}"
    return f"at {start} s" if start == end else f"from {start} s to {end} s"
