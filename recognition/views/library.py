"""The library and the searches on it: photos and videos by person, tag, date, kind and
unknown faces; near-duplicate photos; and "find this face everywhere" for one face."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.ownership import owned_by
from recognition import library, search, search_images
from recognition.models import Face

ASSETS_PER_PAGE = 48
GROUPS_PER_PAGE = 20
FACES_EVERYWHERE = 60


@login_required
@require_GET
def library_page(request):
    form = library.LibraryFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return render(request, "recognition/library.html", {"form": form, "assets": None}, status=400)
    assets = Paginator(library.search(request.user, form.cleaned_data), ASSETS_PER_PAGE).get_page(
        request.GET.get("page"))
    if form.cleaned_data.get("person") is not None:
        library.focus_on_person(list(assets), form.cleaned_data["person"])
    return render(request, "recognition/library.html", {
        "form": form,
        "assets": assets,
        "filtered": any(form.cleaned_data.get(name) not in (None, "", False) for name in form.fields),
        "previous_query": form.query_string(page=assets.previous_page_number()) if assets.has_previous() else None,
        "next_query": form.query_string(page=assets.next_page_number()) if assets.has_next() else None,
    })


@login_required
@require_GET
def duplicates(request):
    groups = search_images.near_duplicates(request.user.pk)
    return render(request, "recognition/duplicates.html", {
        "groups": Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page")),
        "photos": sum(len(group.assets) for group in groups),
        "max_distance": settings.SIGHTLINE_DUPLICATE_DISTANCE,
    })


@login_required
@require_GET
def face_everywhere(request, face_id):
    """The owner's faces nearest to this one, across their whole library."""
    face = get_object_or_404(owned_by(Face.objects.select_related("asset", "subject"), request.user),
                             pk=face_id, dismissed=False)
    nearest = search.similar_faces(face.owner_id, face.embedding, limit=FACES_EVERYWHERE, exclude_id=face.pk)
    ids = [other.pk for other in nearest]
    loaded = Face.objects.select_related("asset", "subject").in_bulk(ids)
    distances = {other.pk: other.distance for other in nearest}
    # relaxed_order may hand the index's neighbours over slightly out of order.
    faces = sorted((loaded[pk] for pk in ids if pk in loaded), key=lambda f: (distances[f.pk], f.pk))
    for other in faces:
        other.distance = distances[other.pk]
    threshold = search.default_threshold()
    return render(request, "recognition/similar_faces.html", {
        "face": face,
        "sections": [
            ("Probably the same person", [f for f in faces if f.distance <= threshold],
             "No other face of yours is this close."),
            ("Less alike", [f for f in faces if f.distance > threshold], ""),
        ],
        "threshold": threshold,
    })
