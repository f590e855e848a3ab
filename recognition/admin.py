"""Back-office for recognition: jobs (filters, re-run, recover), subjects with their example
faces, faces with their crops, and media's Asset admin extended with job state."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse
from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html

from media.admin import AssetAdmin
from media.models import Asset
from config.refusals import Refusal
from recognition import services
from recognition.people import corrections
from recognition.models import Face, Job, Stage, Subject

CROP_PREVIEW = '<img src="{}" alt="face {}" loading="lazy" style="height:{}px;width:auto;border-radius:3px">'


def crop_preview(face: Face, height: int = 64) -> str:
    # The API's crop endpoint: it accepts the admin's session and lets staff see every face.
    return format_html(CROP_PREVIEW, reverse("face-crop", args=[face.pk]), face.pk, height)


# --- assets: media's admin, plus the latest job ---------------------------------------------


class JobInline(admin.TabularInline):
    model = Job
    fields = ["link", "stage", "progress", "attempts", "error_code", "error", "created_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Job")
    def link(self, job):
        return format_html('<a href="{}">#{}</a>', reverse("admin:recognition_job_change", args=[job.pk]), job.pk)


class AssetWithJobsAdmin(AssetAdmin):
    list_display = [*AssetAdmin.list_display, "job_state", "face_count"]
    inlines = [JobInline]

    def get_queryset(self, request):
        latest = Job.objects.filter(asset=OuterRef("pk")).newest_first()
        return super().get_queryset(request).annotate(
            latest_stage=Subquery(latest.values("stage")[:1]),
            latest_progress=Subquery(latest.values("progress")[:1]),
            faces_found=Count("faces"),
        )

    @admin.display(description="Job", ordering="latest_stage")
    def job_state(self, asset):
        if asset.latest_stage is None:
            return "—"
        if asset.latest_stage in (Stage.COMPLETED, Stage.FAILED):
            return asset.latest_stage
        return f"{asset.latest_stage} ({asset.latest_progress}%)"

    @admin.display(description="Faces", ordering="faces_found")
    def face_count(self, asset):
        return asset.faces_found


admin.site.unregister(Asset)
admin.site.register(Asset, AssetWithJobsAdmin)


# --- jobs ----------------------------------------------------------------------------------


class FailedFilter(admin.SimpleListFilter):
    title = "failed"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return [("yes", "Failed"), ("no", "Not failed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(stage=Stage.FAILED)
        if self.value() == "no":
            return queryset.exclude(stage=Stage.FAILED)
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "asset", "owner", "stage", "progress", "attempts", "error_code", "created_at", "finished_at"]
    list_filter = ["stage", FailedFilter, "error_code", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "asset__original_name", "asset__owner__email", "error"]
    list_select_related = ["asset", "asset__owner"]
    readonly_fields = [
        "asset", "stage", "progress", "timings", "error", "error_code", "attempts", "rq_job_id", "model_version",
        "created_at", "updated_at", "finished_at",
    ]
    actions = ["rerun_jobs", "recover_stuck_jobs"]

    def has_add_permission(self, request):
        return False  # jobs start from uploads and re-runs

    def has_change_permission(self, request, obj=None):
        return False  # the stage machine alone changes a job

    @admin.display(description="Owner", ordering="asset__owner__email")
    def owner(self, job):
        return job.asset.owner

    @admin.action(description="Re-run the selected jobs' assets")
    def rerun_jobs(self, request, queryset):
        started, busy = [], []
        for job in queryset.select_related("asset"):
            try:
                started.append(services.rerun_asset(job.asset).pk)
            except services.JobInProgress:
                busy.append(job.pk)
        if started:
            self.message_user(request, f"Started {len(started)} new job(s): {', '.join(map(str, started))}.")
        if busy:
            self.message_user(request, f"Skipped job(s) whose asset is still being processed: "
                                       f"{', '.join(map(str, busy))}.", messages.WARNING)

    @admin.action(description="Recover stuck jobs (all jobs, not only the selected)")
    def recover_stuck_jobs(self, request, queryset):
        recovery = services.recover_stuck_jobs(grace=timedelta(seconds=60))
        self.message_user(
            request,
            f"Re-queued {len(recovery.requeued)} job(s), failed {len(recovery.failed)} that kept stopping; "
            f"left {len(recovery.left)} unfinished job(s) alone: {services.Recovery.LEFT_MEANING} "
            "(manage.py requeue -v 2 says which and why).",
        )


# --- subjects and faces --------------------------------------------------------------------


class ExampleFaceInline(admin.TabularInline):
    model = Face
    verbose_name = "example face"
    verbose_name_plural = "example faces"
    fields = ["preview", "asset", "quality", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(is_example=True).select_related("asset")

    def has_add_permission(self, request, obj=None):
        return False  # enrol through the API or `manage.py enroll`: a face needs detecting

    @admin.display(description="Face")
    def preview(self, face):
        return crop_preview(face)


class NamedFilter(admin.SimpleListFilter):
    title = "named"
    parameter_name = "named"

    def lookups(self, request, model_admin):
        return [("yes", "Named"), ("no", "Unknown cluster")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.named()
        if self.value() == "no":
            return queryset.unnamed()
        return queryset


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "hidden", "examples", "faces", "created_at"]
    list_filter = [NamedFilter, "hidden"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__email"]
    raw_id_fields = ["owner"]
    fields = ["owner", "name", "notes", "hidden", "created_at"]
    readonly_fields = ["owner", "created_at"]
    inlines = [ExampleFaceInline]
    actions = ["merge_into_first", "erase_people"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_counts()

    def has_add_permission(self, request):
        return False  # people belong to users: they add them on their pages or through the API

    @admin.display(description="Examples", ordering="example_count")
    def examples(self, subject):
        return subject.example_count

    @admin.display(description="Faces", ordering="face_count")
    def faces(self, subject):
        return subject.face_count

    def save_model(self, request, obj, form, change):
        # Through the same rules as the pages and the API (naming a cluster confirms its faces).
        stored = Subject.objects.get(pk=obj.pk)
        with transaction.atomic():
            if "name" in form.changed_data:
                try:
                    corrections.rename_person(stored, form.cleaned_data["name"])
                except Refusal as refusal:
                    self.message_user(request, refusal.message, messages.ERROR)
            Subject.objects.filter(pk=obj.pk).update(notes=obj.notes, hidden=obj.hidden)

    def delete_model(self, request, obj):
        corrections.delete_person(obj)

    def delete_queryset(self, request, queryset):
        for subject in queryset:
            corrections.delete_person(subject)

    @admin.action(description="Merge the selected people into the first selected (oldest)")
    def merge_into_first(self, request, queryset):
        people = list(queryset.order_by("created_at", "id"))
        if len({p.owner_id for p in people}) != 1:
            self.message_user(request, "Only one user's people can be merged together.", messages.ERROR)
            return
        try:
            result = corrections.merge_people(people[0], people[1:])
        except Refusal as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return
        self.message_user(request, f"Merged {', '.join(result.merged)} into {result.target}: "
                                   f"{result.faces_moved} face(s) moved.")

    @admin.action(description="Erase the selected people (every face, embedding and example)")
    def erase_people(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            previews = [corrections.erasure_preview(subject) for subject in queryset]
            return TemplateResponse(request, "admin/recognition/erase_confirmation.html", {
                **self.admin_site.each_context(request),
                "title": "Erase people?",
                "previews": previews,
                "queryset": queryset,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            })
        erased = [corrections.erase_person(subject) for subject in queryset]
        self.message_user(request, "Erased " + "; ".join(f"{e.name}: {e.describe()}" for e in erased) + ".")


class FaceAdminForm(forms.ModelForm):
    class Meta:
        model = Face
        fields = ["subject"]

    def clean_subject(self):
        subject = self.cleaned_data["subject"]
        if subject is not None and subject.owner_id != self.instance.owner_id:
            raise forms.ValidationError("This person belongs to another user than the face.")
        return subject


@admin.register(Face)
class FaceAdmin(admin.ModelAdmin):
    form = FaceAdminForm
    list_display = ["preview", "id", "asset", "owner", "subject", "decided_by", "is_example", "dismissed",
                    "match_distance", "quality", "created_at"]
    list_display_links = ["preview", "id"]
    list_filter = ["decided_by", "is_example", "dismissed", ("subject", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["asset", "owner", "subject"]
    search_fields = ["=id", "subject__name", "owner__email", "asset__original_name"]
    raw_id_fields = ["subject"]
    fields = ["large_preview", "asset", "owner", "subject", "decided_by", "decided_at", "is_example", "dismissed",
              "match_distance", "box", "score", "quality", "frame_index", "timestamp", "model_version", "job",
              "created_at"]
    readonly_fields = [f for f in fields if f != "subject"]
    actions = ["dismiss_faces", "restore_faces"]

    def has_add_permission(self, request):
        return False  # faces come from the pipeline

    def save_model(self, request, obj, form, change):
        # A staff member's word is a human decision, through the same rules as the pages and the API.
        corrections.say_who(obj, form.cleaned_data["subject"])

    @admin.action(description="Not a face: dismiss the selected faces")
    def dismiss_faces(self, request, queryset):
        for face in queryset:
            corrections.dismiss_face(face)
        self.message_user(request, f"Dismissed {queryset.count()} face(s).")

    @admin.action(description="Restore the selected dismissed faces")
    def restore_faces(self, request, queryset):
        restored = [corrections.restore_face(face) for face in queryset.filter(dismissed=True)]
        self.message_user(request, f"Restored {len(restored)} face(s).")

    @admin.display(description="Face")
    def preview(self, face):
        return crop_preview(face)

    @admin.display(description="Face")
    def large_preview(self, face):
        return crop_preview(face, height=160)
