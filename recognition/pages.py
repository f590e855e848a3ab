"""Read-side queries for the browser pages: every one starts from ``owned_by`` and loads
related rows in bulk, so a page costs a fixed number of queries however much it lists."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from accounts.ownership import owned_by
from media.models import Asset
from recognition.models import STAGE_PROGRESS, Face, Job, Subject, with_latest_job

PIPELINE_STAGES = [str(stage) for stage in STAGE_PROGRESS if stage != "completed"]


@dataclass(frozen=True)
class Counts:
    photos: int
    videos: int
    faces: int
    recognised_faces: int
    people: int

    @property
    def recognised_percent(self) -> int | None:
        if not self.faces:
            return None
        return round(100 * self.recognised_faces / self.faces)


def counts_for(user) -> Counts:
    assets = owned_by(Asset.objects.all(), user).aggregate(
        photos=Count("id", filter=Q(kind=Asset.Kind.IMAGE)), videos=Count("id", filter=Q(kind=Asset.Kind.VIDEO))
    )
    faces = owned_by(Face.objects.all(), user).aggregate(
        total=Count("id"), recognised=Count("id", filter=Q(subject__isnull=False))
    )
    return Counts(
        photos=assets["photos"],
        videos=assets["videos"],
        faces=faces["total"],
        recognised_faces=faces["recognised"],
        people=owned_by(Subject.objects.all(), user).count(),
    )


def assets_with_latest_job(user) -> QuerySet:
    """The user's assets, newest first, with ``face_count`` and their latest job at hand."""
    return with_latest_job(owned_by(Asset.objects.all(), user)).order_by("-created_at", "-id")


@dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float | None
    running: bool


def stage_timings(job: Job | None) -> list[StageTiming]:
    """The pipeline's stages in order, with how long each took (None: not reached)."""
    if job is None:
        return []
    rows = []
    for stage in PIPELINE_STAGES:
        timing = job.timings.get(stage)
        if timing is None:
            continue
        rows.append(StageTiming(stage, timing.get("seconds"), running="ended_at" not in timing and not job.is_finished))
    return rows


@dataclass(frozen=True)
class FaceBox:
    """A face's box as percentages of the picture, so the overlay scales with the image."""

    face: Face
    left: str
    top: str
    width: str
    height: str


def face_boxes(asset: Asset, faces) -> list[FaceBox]:
    if asset.is_video or not asset.width or not asset.height:
        return []

    def percent(value, total):
        return f"{max(0.0, min(100.0, 100 * value / total)):.3f}%"

    boxes = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        boxes.append(FaceBox(face, percent(x1, asset.width), percent(y1, asset.height),
                             percent(x2 - x1, asset.width), percent(y2 - y1, asset.height)))
    return boxes


def subjects_with_counts(user) -> QuerySet:
    # Explicit order: Meta.ordering does not apply to aggregating (GROUP BY) queries.
    return (
        owned_by(Subject.objects.all(), user)
        .annotate(face_count=Count("faces"), example_count=Count("faces", filter=Q(faces__is_example=True)))
        .order_by("name", "id")
    )
