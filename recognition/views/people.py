"""People: the gallery (named people, then people without a name, biggest first), adding a
person, and one person's page with everything a person can decide about them: rename, hide,
merge with another, delete, erase, and reference photos that teach recognition."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.ownership import owned_by
from config.refusals import Refusal
from recognition import enrollment, pages, services
from recognition.forms import RenameForm, SubjectForm
from recognition.models import Subject
from recognition.people import corrections

PEOPLE_PER_PAGE = 48
FACES_PER_PAGE = 48
APPEARANCES_SHOWN = 100


def _person(request, subject_id) -> Subject:
    return get_object_or_404(owned_by(Subject.objects.all(), request.user), pk=subject_id)


@login_required
@require_http_methods(["GET", "POST"])
def people(request):
    form = SubjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subject = corrections.create_person(request.user, form.cleaned_data["name"],
                                                notes=form.cleaned_data["notes"])
        except Refusal as refusal:
            form.add_error("name", refusal.message)
        else:
            messages.success(request, f"{subject.name} added. Name their faces on your photos, or add reference "
                                      "photos here, to teach Sightline to recognise them.")
            return redirect("person", subject_id=subject.pk)
    show_hidden = request.GET.get("hidden") == "1"
    gallery = pages.people_gallery(request.user, hidden=show_hidden)
    return render(request, "recognition/people.html", {
        "people": Paginator(gallery, PEOPLE_PER_PAGE).get_page(request.GET.get("page")),
        "show_hidden": show_hidden,
        "hidden_count": pages.people_gallery(request.user, hidden=True).count(),
        "form": form,
    }, status=400 if form.errors else 200)


@login_required
@require_GET
def person_detail(request, subject_id):
    subject = get_object_or_404(pages.people_with_counts(request.user), pk=subject_id)
    return render(request, "recognition/person.html", {
        "subject": subject,
        "faces": Paginator(pages.faces_of_person(subject), FACES_PER_PAGE).get_page(request.GET.get("page")),
        "appearances": pages.appearances_of_person(subject)[:APPEARANCES_SHOWN],
        "rename_form": RenameForm(initial={"name": subject.name}),
        "others": [p for p in pages.people_to_choose(subject.owner_id) if p.pk != subject.pk],
    })


@login_required
@require_POST
def person_rename(request, subject_id):
    subject = _person(request, subject_id)
    was_named, old_name = subject.is_named, subject.display_name
    form = RenameForm(request.POST)
    try:
        if not form.is_valid():
            raise Refusal("A person needs a name.", "name_required")
        corrections.rename_person(subject, form.cleaned_data["name"])
    except corrections.NameTaken as taken:
        messages.error(request, f"{taken.message} Use “Same person as” below to merge them.")
    except Refusal as refusal:
        messages.error(request, refusal.message)
    else:
        if was_named:
            messages.success(request, f"{old_name} is now called {subject.name}.")
        else:
            messages.success(request, f"This person is now {subject.name}; their faces will teach Sightline "
                                      "to recognise them.")
    return redirect("person", subject_id=subject.pk)


@login_required
@require_POST
def person_hide(request, subject_id):
    subject = _person(request, subject_id)
    hide = request.POST.get("hidden") == "1"
    corrections.set_hidden(subject, hide)
    if hide:
        messages.success(request, f"{subject.display_name} is hidden from the people gallery.")
    else:
        messages.success(request, f"{subject.display_name} is shown in the people gallery again.")
    return redirect("person", subject_id=subject.pk)


@login_required
@require_POST
def person_merge(request, subject_id):
    """“Same person as …”: this person is merged into the chosen one."""
    subject = _person(request, subject_id)
    target = Subject.objects.filter(owner_id=subject.owner_id, pk=request.POST.get("into", "")).first() \
        if request.POST.get("into", "").isdigit() else None
    if target is None:
        messages.error(request, "Choose the person to merge with.")
        return redirect("person", subject_id=subject.pk)
    try:
        result = corrections.merge_people(target, [subject])
    except Refusal as refusal:
        messages.error(request, refusal.message)
        return redirect("person", subject_id=subject.pk)
    left = (f" {result.faces_left_unknown} face(s) you had said were not {result.target.display_name} "
            "stay unknown.") if result.faces_left_unknown else ""
    messages.success(request, f"Merged {result.merged[0]} into {result.target.display_name}: "
                              f"{result.faces_moved} face(s) moved.{left}")
    return redirect("person", subject_id=target.pk)


@login_required
@require_http_methods(["GET", "POST"])
def person_delete(request, subject_id):
    subject = _person(request, subject_id)
    if request.method == "POST":
        name = subject.display_name
        released = corrections.delete_person(subject)
        messages.success(request, f"{name} deleted; their {released} face(s) are unknown again.")
        return redirect("people")
    return render(request, "recognition/person_confirm.html", {
        "subject": subject, "action": "delete", "faces": subject.faces.shown().count(),
    })


@login_required
@require_http_methods(["GET", "POST"])
def person_erase(request, subject_id):
    subject = _person(request, subject_id)
    if request.method == "POST":
        erased = corrections.erase_person(subject)
        messages.success(request, f"{erased.name} erased: {erased.describe()}. Nothing of them is left.")
        return redirect("people")
    return render(request, "recognition/person_confirm.html", {
        "subject": subject, "action": "erase", "erasure": corrections.erasure_preview(subject),
    })


@login_required
@require_POST
def person_photos(request, subject_id):
    """Reference photos uploaded on the person's page: each teaches recognition with its one
    clear face (the page equivalent of enrolling through the API)."""
    subject = _person(request, subject_id)
    files = request.FILES.getlist("photos")
    if not files:
        messages.error(request, "Choose at least one photo of them.")
    for upload in files:
        try:
            enrollment.enroll_photo(subject, upload, upload.name, services.analyze_on_realtime_worker)
        except Refusal as refusal:
            messages.error(request, f"{upload.name}: {_reference_refusal_in_words(refusal, subject)}")
        else:
            messages.success(request, f"{upload.name}: added as a reference photo of {subject.display_name}.")
    return redirect("person", subject_id=subject.pk)


def _reference_refusal_in_words(refusal: Refusal, subject) -> str:
    """The API's refusals name its face_index parameter, which this page does not have."""
    if refusal.code == "several_faces":
        return (f"{len(refusal.faces)} faces were found in this photo, so it cannot tell which one is "
                f"{subject.display_name}. Use a photo of them alone, or upload this one on the dashboard and "
                "name their face on the photo's page.")
    if refusal.code == "low_quality":
        return ("No face in this photo is clear enough to teach recognition (too small, blurred or turned away). "
                "Try a clearer photo of them.")
    return refusal.message
