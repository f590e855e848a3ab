"""What the photo page shows of the library searches: its similar photos."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import template
from django.conf import settings

from config.refusals import Refusal
from recognition import search_images

register = template.Library()

SIMILAR_ON_PAGE = 8


@dataclass
class SimilarSection:
    photos: list = field(default_factory=list)
    message: str = ""
    duplicate_distance: float = field(default_factory=lambda: settings.SIGHTLINE_DUPLICATE_DISTANCE)


@register.simple_tag
def similar_photos(asset) -> SimilarSection:
    """``{% similar_photos asset as similar %}``: the owner's photos nearest to ``asset`` (the
    page's view has already checked the asset is the viewer's), or why there are none."""
    try:
        return SimilarSection(search_images.similar_photos(asset, limit=SIMILAR_ON_PAGE))
    except Refusal as refusal:
        return SimilarSection(message=refusal.message)
