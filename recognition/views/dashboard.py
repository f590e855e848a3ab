"""The dashboard: totals, uploads (one request per file, JSON for its script), recent files."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.refusals import Refusal
from config.throttling import upload_refusal
from recognition import pages, services
from recognition.models import as_new_with_latest_job, latest_job

ASSETS_PER_PAGE = 25
FACES_PER_PAGE = 60


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_GET
def dashboard(request):
    assets = Paginator(pages.assets_with_latest_job(request.user), ASSETS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard.html", {
        "counts": pages.counts_for(request.user),
        "assets": assets,
        "rows": [(asset, latest_job(asset)) for asset in assets],
    })


@login_required
@require_GET
def dashboard_counts(request):
    """The dashboard's totals, refreshed by its script as uploads finish."""
    counts = pages.counts_for(request.user)
    return JsonResponse({**asdict(counts), "recognised_percent": counts.recognised_percent})


@login_required
@require_POST
def upload(request):
    """Each file on its own: one refused file does not stop the others. JSON for fetch(),
    a redirect with messages for a plain form. Counted against the user's upload rate."""
    if (throttled := upload_refusal(request)) is not None:
        return _too_many_uploads(request, throttled)
    files = request.FILES.getlist("files")
    if not files:
        refusal = Refusal("Choose at least one photo or video to upload.", "no_files")
        if _wants_json(request):
            return JsonResponse({**refusal.as_body(), "results": []}, status=refusal.status)
        messages.error(request, refusal.message)
        return redirect("dashboard")

    results = [_upload_one(request, uploaded) for uploaded in files]
    if _wants_json(request):
        ok = any(result["ok"] for result in results)
        status = 200 if ok else results[0]["status"]
        return JsonResponse({"results": results}, status=status)
    for result in results:
        level = messages.success if result["ok"] else messages.error
        level(request, f"{result['name']}: {result['message']}")
    return redirect("dashboard")


def _too_many_uploads(request, refusal):
    if _wants_json(request):
        response = JsonResponse({**refusal.as_body(), "results": []}, status=refusal.status)
    else:
        response = render(request, "errors/error.html", {
            "error_status": refusal.status, "error_title": "Too many uploads", "error_message": refusal.message,
        }, status=refusal.status)
    response["Retry-After"] = str(refusal.retry_after)
    return response


def _upload_one(request, uploaded) -> dict:
    try:
        outcome = services.upload(request.user, uploaded, uploaded.name)
    except Refusal as refusal:
        return {"ok": False, "name": uploaded.name, **refusal.as_body()}
    if outcome.created:
        asset = as_new_with_latest_job(outcome.asset, outcome.job)
    else:  # the asset you already had: its faces and latest job as they are now
        asset = pages.assets_with_latest_job(request.user).get(pk=outcome.asset.pk)
    job = latest_job(asset)
    row_html = render_to_string("recognition/_asset_row.html", {"asset": asset, "job": job}, request=request)
    message = "uploaded, processing started." if outcome.created else "you had already uploaded this file."
    return {"ok": True, "name": uploaded.name, "message": message, "created": outcome.created,
            "asset": asset.pk, "job": job.pk if job else None, "url": reverse("asset", args=[asset.pk]),
            "row_html": row_html, "status": 202 if outcome.created else 200}
