"""A photo's or video's page: the picture with its face boxes, its faces and what to do with
them, tags, processing; and re-running it."""

from __future__ import annotations

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
    faces = pages.faces_of(asset)
    shown = [face for face in faces if not face.dismissed]
    job = latest_job(asset)
    return render(request, "recognition/asset.html", {
        "asset": asset,
        "job": job,
        "jobs": asset.jobs_newest_first,
        "timings": pages.stage_timings(job),
        "faces": shown,
        "dismissed": [face for face in faces if face.dismissed],
        "boxes": pages.face_boxes(asset, shown),
        "tags": asset.tags.all(),
        "people": pages.people_to_choose(asset.owner_id),
    })


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
