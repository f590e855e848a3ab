"""A photo's or video's page: the picture with its face boxes, its faces and what to do with
them, tags, processing; and re-running it."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.refusals import Refusal
from recognition import pages, services
from recognition.models import latest_job


@login_required
@require_GET
def asset_detail(request, asset_id):
    asset = get_object_or_404(pages.assets_with_latest_job(request.user), pk=asset_id)
    job = latest_job(asset)
    tags = list(asset.tags.all())
    context = {
        "asset": asset,
        "job": job,
        "jobs": asset.jobs_newest_first,
        "timings": pages.stage_timings(job),
        "tags": [tag for tag in tags if tag.is_likely],
        "unsure_tags": [tag for tag in tags if not tag.is_likely],
        "people": pages.people_to_choose(asset.owner_id),
        "start_at": _seconds(request.GET.get("t")),
    }
    if asset.is_video:
        # One item per track (its best face): a decision about it is one about the whole track.
        appearances = list(asset.appearances.select_related("best_face__subject", "best_face__appearance")
                           .prefetch_related("best_face__rejections").order_by("start_seconds", "id"))
        shown = [a for a in appearances if a.best_face and not a.best_face.dismissed]
        context.update({
            "appearances": shown,
            "faces": [a.best_face for a in shown],
            "dismissed": [a.best_face for a in appearances if a.best_face and a.best_face.dismissed],
            "timeline": pages.video_timeline(asset, shown),
            "video_faces": pages.video_face_boxes(asset, shown),
            "sample_seconds": 1 / settings.SIGHTLINE_VIDEO_FPS,
        })
    else:
        faces = pages.faces_of(asset)
        shown = [face for face in faces if not face.dismissed]
        context.update({
            "faces": shown,
            "dismissed": [face for face in faces if face.dismissed],
            "boxes": pages.face_boxes(asset, shown),
        })
    context["clear_faces"], context["unclear_faces"] = pages.numbered_by_clarity(context["faces"])
    return render(request, "recognition/asset.html", context)


def _seconds(value) -> float | None:
    """``?t=12.5``: where a video starts playing (a person's "play from here")."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 1e7 else None


@login_required
@require_POST
def asset_rerun(request, asset_id):
    asset = get_object_or_404(pages.assets_with_latest_job(request.user), pk=asset_id)
    try:
        services.rerun_asset(asset)
    except Refusal as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"Processing {asset.original_name} again.")
    return redirect("asset", asset_id=asset.pk)
