"""Read-side queries for the browser pages: every one starts from ``owned_by`` and loads
related rows in bulk, so a page costs a fixed number of queries however much it lists."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from accounts.ownership import owned_by
from media.models import Asset
from recognition.models import STAGE_PROGRESS, Appearance, Decider, Face, Job, Subject, with_latest_job

PIPELINE_STAGES = [str(stage) for stage in STAGE_PROGRESS if stage != "completed"]


@dataclass(frozen=True)
class Counts:
    photos: int
    videos: int
    faces: int
    recognised_faces: int
    people: int  # named
    people_to_name: int  # groups of unknown faces the people page offers to name

    @property
    def recognised_percent(self) -> int | None:
        if not self.faces:
            return None
        return round(100 * self.recognised_faces / self.faces)


def counts_for(user) -> Counts:
    assets = owned_by(Asset.objects.all(), user).aggregate(
        photos=Count("id", filter=Q(kind=Asset.Kind.IMAGE)), videos=Count("id", filter=Q(kind=Asset.Kind.VIDEO))
    )
    # Recognised: the face's person has a name (a person without one is a guess at grouping).
    faces = owned_by(Face.objects.shown(), user).aggregate(
        total=Count("id"), recognised=Count("id", filter=Q(subject__isnull=False) & ~Q(subject__name=""))
    )
    return Counts(
        photos=assets["photos"],
        videos=assets["videos"],
        faces=faces["total"],
        recognised_faces=faces["recognised"],
        people=owned_by(Subject.objects.named(), user).count(),
        people_to_name=owned_by(Subject.objects.unnamed().filter(hidden=False), user)
        .filter(Exists(Face.objects.shown().filter(subject=OuterRef("pk")))).count(),
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
    label_classes: str


def face_boxes(asset: Asset, faces) -> list[FaceBox]:
    if asset.is_video or not asset.width or not asset.height:
        return []

    def percent(value, total):
        return f"{max(0.0, min(100.0, 100 * value / total)):.3f}%"

    boxes = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        boxes.append(FaceBox(face, percent(x1, asset.width), percent(y1, asset.height),
                             percent(x2 - x1, asset.width), percent(y2 - y1, asset.height),
                             label_classes(face.box, asset.width, asset.height)))
    return boxes


def label_classes(box, width: int, height: int) -> str:
    """Where a box's label goes so that it stays on the picture: under the box from its left
    edge, as a rule; from its right edge for a box in the right half (a label running right
    from there would leave the picture on a phone), and above a box at the bottom."""
    x1, _, x2, y2 = box
    classes = []
    if (x1 + x2) / 2 > width / 2:
        classes.append("label-end")
    if y2 > 0.88 * height:
        classes.append("label-above")
    return " ".join(classes)


def people_with_counts(user) -> QuerySet:
    """The user's people with ``face_count``, ``example_count`` and ``cover_face_id``."""
    return owned_by(Subject.objects.all(), user).with_counts().with_cover()


def people_gallery(user, hidden: bool = False) -> QuerySet:
    """One tile per person: named people A to Z, then people without a name, biggest first.
    ``hidden``: the hidden ones instead. A person without a name and without faces is left out."""
    return people_with_counts(user).filter(Q(face_count__gt=0) | ~Q(name=""), hidden=hidden).gallery_order()


def people_to_choose(owner_id: int) -> list[Subject]:
    """The owner's people for a "who is this?" list: named ones A to Z, then the others."""
    return list(Subject.objects.filter(owner_id=owner_id).with_counts().gallery_order())


def faces_of(asset) -> list[Face]:
    """An asset's faces in display order (the numbers on the picture follow it), with what the
    controls need: their person and the people they were rejected from."""
    return list(asset.faces.select_related("subject").prefetch_related("rejections"))


def numbered_by_clarity(faces: list[Face]) -> tuple[list[tuple[int, Face]], list[tuple[int, Face]]]:
    """The faces numbered as on the picture, split into those worth a person's look and the
    unclear ones nobody decided about (under ``SIGHTLINE_ENROL_MIN_QUALITY``: mostly the
    detector's false positives, a chair or a dark corner), which pages show folded away."""
    clear, unclear = [], []
    for number, face in enumerate(faces, 1):
        undecided = face.decided_by == Decider.AUTO and face.subject_id is None
        (unclear if undecided and face.quality < settings.SIGHTLINE_ENROL_MIN_QUALITY else clear).append((number, face))
    return clear, unclear


def faces_of_person(subject: Subject) -> QuerySet:
    """A person's faces, examples and clearest first, each with its photo; a video track shows
    once, by its best face (its appearances are listed on their own)."""
    return (subject.faces.shown().one_per_track().select_related("asset", "appearance")
            .order_by("-is_example", "-decided_by", "-quality", "-id"))


def appearances_of_person(subject: Subject) -> QuerySet:
    return (Appearance.objects.of_person(subject.pk).filter(best_face__dismissed=False)
            .select_related("asset", "best_face").order_by("asset__original_name", "asset_id", "start_seconds"))


@dataclass(frozen=True)
class TimelineBar:
    appearance: object
    left: str  # percent of the video
    width: str
    lane: int = 0  # bars of a row that overlap in time go one under the other


@dataclass(frozen=True)
class TimelineRow:
    """One person's row of the video timeline (everyone not recognised shares a row)."""

    subject: Subject | None
    label: str
    bars: list[TimelineBar]

    @property
    def lanes(self) -> int:
        return 1 + max((bar.lane for bar in self.bars), default=0)


MIN_BAR_SECONDS = 0.5  # a face seen in a single sampled frame still gets a visible bar


def video_timeline(asset, appearances) -> list[TimelineRow]:
    """Rows of who appears when: named people A to Z, people without a name, then the rest."""
    duration = max(asset.duration_seconds or 0.0, max((a.end_seconds for a in appearances), default=0.0), 0.001)

    def bars(appearances) -> list[TimelineBar]:
        """Each appearance's bar, in the first lane free when it starts: several unknown
        people seen at once would otherwise be drawn on top of each other, one clickable."""
        lane_ends: list[float] = []
        placed = []
        for appearance in sorted(appearances, key=lambda a: (a.start_seconds, a.end_seconds)):
            start = min(appearance.start_seconds, duration)
            width = min(max(appearance.end_seconds - appearance.start_seconds, MIN_BAR_SECONDS), duration - start)
            # A gap of a bar's minimum keeps bars that almost touch apart on a narrow screen.
            lane = next((n for n, end in enumerate(lane_ends) if end + MIN_BAR_SECONDS <= start), len(lane_ends))
            if lane == len(lane_ends):
                lane_ends.append(0.0)
            lane_ends[lane] = start + width
            placed.append(TimelineBar(appearance, f"{100 * start / duration:.3f}%", f"{100 * width / duration:.3f}%",
                                      lane))
        return placed

    rows: dict[object, list] = {}
    for appearance in appearances:
        rows.setdefault(appearance.subject.pk if appearance.subject else None, []).append(appearance)
    named = sorted((k for k in rows if k is not None and rows[k][0].subject.is_named),
                   key=lambda k: rows[k][0].subject.name.lower())
    unnamed = [k for k in rows if k is not None and not rows[k][0].subject.is_named]
    ordered = [*named, *unnamed, *([None] if None in rows else [])]
    return [
        TimelineRow(rows[k][0].subject if k is not None else None,
                    rows[k][0].subject.display_name if k is not None else "Not recognised",
                    bars(rows[k]))
        for k in ordered
    ]


def video_face_boxes(asset, appearances) -> list[dict]:
    """Every shown face of the video with its time and box, for drawing over the playing video."""
    labels = {a.pk: (a.subject.display_name if a.subject else "unknown") for a in appearances}
    faces = asset.faces.shown().filter(appearance_id__in=labels).values("timestamp", "box", "appearance_id")
    return [{"t": f["timestamp"], "box": f["box"], "label": labels[f["appearance_id"]],
             "placement": label_classes(f["box"], asset.width, asset.height)} for f in faces]
