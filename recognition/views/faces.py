"""What a person decides about one face, from a photo's page or a person's page: who it is
(one of their people, a new person, or unknown), "not this person", "not a face", and undoing
"not a face". Each answers with a message that names the photo and the people, and goes back
where it came from."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.ownership import owned_by
from config.refusals import Refusal
from recognition.forms import FaceSubjectForm
from recognition.models import Face
from recognition.people import corrections


def _face(request, face_id) -> Face:
    return get_object_or_404(owned_by(Face.objects.select_related("subject", "asset", "owner"), request.user),
                             pk=face_id)


def _back(request, face: Face):
    """To the page the form was on (``next``, our own site only), else the face on its photo."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = f"{reverse('asset', args=[face.asset_id])}#face-{face.pk}"
    return redirect(target)


def _listed_faces(subject) -> int:
    return subject.faces.shown().one_per_track().count() if subject is not None else 0


def _also_recognised(subject, listed_before: int, was_listed: bool) -> str:
    """Other faces that naming a face taught Sightline to recognise as ``subject`` (a group it
    was in, look-alikes elsewhere): said, or they would seem to move by themselves. Counted as
    the person's page lists faces (a video track once)."""
    taught = _listed_faces(subject) - listed_before - (0 if was_listed else 1)
    if taught <= 0:
        return ""
    return (f" {taught} more face{'s' * (taught != 1)} that look{'s' * (taught == 1)} like them "
            f"{'is' if taught == 1 else 'are'} now {subject.display_name} too.")


def _matching_words(face: Face) -> str:
    if face.is_example:
        return " Sightline will use it to recognise them."
    return (f" It is too unclear (quality {face.quality:.2f}) to teach recognition, so it is not used for "
            "matching.")


@login_required
@require_POST
def face_assign(request, face_id):
    face = _face(request, face_id)
    form = FaceSubjectForm(request.POST, face=face)
    if not form.is_valid():
        # Only a tampered form, or "New person…" without a name, gets here.
        if form.errors.get("new_name"):
            messages.error(request, form.errors["new_name"][0])
            return _back(request, face)
        return HttpResponseBadRequest("Choose one of your people, a new person, or unknown.")
    photo = face.asset.original_name
    listed_before, was_listed = 0, False  # naming this face may recognise more as the person
    try:
        if form.cleaned_data["new_name"]:
            subject = corrections.create_person(face.owner, form.cleaned_data["new_name"], face=face)
        elif form.cleaned_data["subject"] is not None:
            subject = form.cleaned_data["subject"]
            listed_before = _listed_faces(subject)
            was_listed = face.subject_id == subject.pk and not face.dismissed
            corrections.name_face(face, subject)
        else:
            corrections.mark_unknown(face)
            messages.success(request, f"{photo}: this face is now unknown; Sightline will not guess who it is.")
            return _back(request, face)
    except Refusal as refusal:
        messages.error(request, refusal.message)
        return _back(request, face)
    face.refresh_from_db()
    messages.success(request, f"{photo}: this face is now {subject.display_name}.{_matching_words(face)}"
                              f"{_also_recognised(subject, listed_before, was_listed)}")
    return _back(request, face)


@login_required
@require_POST
def face_reject(request, face_id):
    face = _face(request, face_id)
    previous = face.subject
    try:
        corrections.reject_face(face)
    except Refusal as refusal:
        messages.error(request, refusal.message)
        return _back(request, face)
    face.refresh_from_db()
    now = f"it is now {face.subject.display_name}" if face.subject_id else "it is unknown now"
    messages.success(request, f"{face.asset.original_name}: not {previous.display_name}, noted; {now}. "
                              f"Sightline will not take it for {previous.display_name} again.")
    return _back(request, face)


@login_required
@require_POST
def face_dismiss(request, face_id):
    face = corrections.dismiss_face(_face(request, face_id))
    messages.success(request, f"{face.asset.original_name}: dismissed as not a face. It stays hidden, even after "
                              "a re-run; you can restore it from the photo's page.")
    return _back(request, face)


@login_required
@require_POST
def face_restore(request, face_id):
    face = corrections.restore_face(_face(request, face_id))
    who = face.subject.display_name if face.subject_id else "unknown"
    messages.success(request, f"{face.asset.original_name}: the face is back ({who}).")
    return _back(request, face)
