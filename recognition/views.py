"""Browser pages: dashboard with uploads, an asset's faces, people. Session auth, owner-scoped.

Images come from the API's owner-checked endpoints (file, thumbnail, face crop), which accept
the same session, so the pages serve no pixels of their own.
"""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.ownership import owned_by
from config.refusals import Refusal
from recognition import enrollment, pages, services
from recognition.forms import FaceSubjectForm, SubjectForm
from recognition.models import Face, Subject, latest_job

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
    a redirect with messages for a plain form."""
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


def _upload_one(request, uploaded) -> dict:
    try:
        outcome = services.upload(request.user, uploaded, uploaded.name)
    except Refusal as refusal:
        return {"ok": False, "name": uploaded.name, **refusal.as_body()}
    asset = pages.assets_with_latest_job(request.user).get(pk=outcome.asset.pk)
    job = latest_job(asset)
    row_html = render_to_string("recognition/_asset_row.html", {"asset": asset, "job": job}, request=request)
    message = "uploaded, processing started." if outcome.created else "you had already uploaded this file."
    return {"ok": True, "name": uploaded.name, "message": message, "created": outcome.created,
            "asset": asset.pk, "job": job.pk if job else None, "url": reverse("asset", args=[asset.pk]),
            "row_html": row_html, "status": 202 if outcome.created else 200}


@login_required
@require_GET
def asset_detail(request, asset_id):
    asset = get_object_or_404(pages.assets_with_latest_job(request.user), pk=asset_id)
    faces = list(asset.faces.select_related("subject"))
    job = latest_job(asset)
    return render(request, "recognition/asset.html", {
        "asset": asset,
        "job": job,
        "jobs": asset.jobs_newest_first,
        "timings": pages.stage_timings(job),
        "faces": faces,
        "boxes": pages.face_boxes(asset, faces),
        "tags": asset.tags.all(),
        "subjects": Subject.objects.filter(owner_id=asset.owner_id).order_by("name", "id"),
    })


@login_required
@require_POST
def asset_rerun(request, asset_id):
    asset = get_object_or_404(pages.assets_with_latest_job(request.user), pk=asset_id)
    try:
        services.rerun_asset(asset)
    except services.JobInProgress as busy:
        messages.error(request, str(busy))
    else:
        messages.success(request, f"Processing {asset.original_name} again.")
    return redirect("asset", asset_id=asset.pk)


@login_required
@require_POST
def face_assign(request, face_id):
    face = get_object_or_404(owned_by(Face.objects.select_related("subject"), request.user), pk=face_id)
    form = FaceSubjectForm(request.POST, face=face)
    if not form.is_valid():
        # Only a tampered form gets here: the select lists the owner's people alone.
        return HttpResponseBadRequest("Choose one of your people, or unknown.")
    subject = form.cleaned_data["subject"]
    enrollment.assign_subject(face, subject)
    who = subject.name if subject else "unknown"
    messages.success(request, f"{face.asset.original_name}: this face is now {who}.")
    return redirect(f"{reverse('asset', args=[face.asset_id])}#face-{face.pk}")


@login_required
def people(request):
    form = SubjectForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                subject = form.save()
        except IntegrityError:  # the same name created a moment ago by another request
            form.add_error("name", "You already have a person with this name.")
        else:
            messages.success(request, f"{subject.name} added.")
            return redirect("person", subject_id=subject.pk)
    status = 400 if form.errors else 200
    return render(request, "recognition/people.html",
                  {"subjects": pages.subjects_with_counts(request.user), "form": form}, status=status)


@login_required
@require_GET
def person_detail(request, subject_id):
    subject = get_object_or_404(pages.subjects_with_counts(request.user), pk=subject_id)
    faces = subject.faces.select_related("asset").order_by("-created_at", "-id")
    return render(request, "recognition/person.html", {
        "subject": subject,
        "faces": Paginator(faces, FACES_PER_PAGE).get_page(request.GET.get("page")),
    })
