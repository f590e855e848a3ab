"""What the photo page shows of the library searches: its similar photos."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html

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


@register.simple_tag
def asset_thumbnail(asset, css_class: str):
    """The asset's thumbnail for a list (decorative: its name is next to it), cropped around the
    point it keeps in view (its largest face); a labelled box while it has none."""
    if not asset.thumbnail:
        return format_html('<span class="{} thumb-missing" aria-hidden="true">{}</span>', css_class,
                           asset.get_kind_display())
    position = ""
    if asset.focus_x is not None and asset.focus_y is not None:
        position = format_html(' style="object-position: {}% {}%"', round(asset.focus_x * 100, 1),
                               round(asset.focus_y * 100, 1))
    return format_html('<img class="{}" src="{}" alt="" loading="lazy"{}>', css_class,
                       reverse("asset-thumbnail", args=[asset.pk]), position)
