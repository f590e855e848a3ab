"""Jobs (the stage machine), people, faces with their embeddings, image tags and embeddings."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.db.models.functions import Lower
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField

from config.db import update_rows
from media.models import Asset
from recognition import tagging

FACE_EMBEDDING_DIMENSIONS = 128
IMAGE_EMBEDDING_DIMENSIONS = 1280
# Two detections of one image overlapping this much (intersection over union) are one face.
SAME_FACE_IOU = 0.5


def box_area(box) -> float:
    """The area of an [x1, y1, x2, y2] box."""
    return (box[2] - box[0]) * (box[3] - box[1])


def box_iou(a, b) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


class Stage(models.TextChoices):
    UPLOADING = "uploading"  # the file is being received, validated and stored
    QUEUED = "queued"  # stored and enqueued; waiting for a worker
    DETECTING = "detecting"
    ENHANCING = "enhancing"
    RECOGNIZING = "recognizing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL_STAGES = (Stage.COMPLETED, Stage.FAILED)
# Progress each stage starts at; the pipeline reports finer progress within a stage.
STAGE_PROGRESS = {
    Stage.UPLOADING: 0,
    Stage.QUEUED: 5,
    Stage.DETECTING: 10,
    Stage.ENHANCING: 50,
    Stage.RECOGNIZING: 70,
    Stage.COMPLETED: 100,
}


class JobQuerySet(models.QuerySet):
    def active(self):
        # Named stages, not "not terminal": the stage index then finds the few active jobs.
        return self.filter(stage__in=[stage for stage in Stage.values if stage not in TERMINAL_STAGES])

    def newest_first(self):
        return self.order_by("-created_at", "-id")

    def latest_for(self, asset) -> Job | None:
        """The asset's latest job (its current state), or None if it never had one."""
        return self.filter(asset=asset).newest_first().first()


LATEST_JOBS_ATTR = "jobs_newest_first"


def with_latest_job(assets: models.QuerySet) -> models.QuerySet:
    """Assets with ``face_count`` and their jobs prefetched newest first, for ``latest_job``:
    a list of assets costs the same few queries however long it is."""
    return assets.annotate(face_count=models.Count("faces", filter=models.Q(faces__dismissed=False))).prefetch_related(
        models.Prefetch("jobs", queryset=Job.objects.newest_first(), to_attr=LATEST_JOBS_ATTR)
    )


def as_new_with_latest_job(asset: Asset, job: Job) -> Asset:
    """A just-uploaded asset as ``with_latest_job`` would read it back (no faces and no tags yet,
    ``job`` its only job), from the rows in hand instead of three more queries."""
    asset.face_count = 0
    setattr(asset, LATEST_JOBS_ATTR, [job])
    # What prefetch_related_objects leaves for an empty prefetch of the tags (DRF, too, reads
    # and clears this cache), without its 0.7 ms of CPU in every upload.
    asset._prefetched_objects_cache = {ImageTag.asset.field.remote_field.cache_name: ImageTag.objects.none()}
    return asset


def latest_job(asset) -> Job | None:
    """The asset's latest job: from ``with_latest_job``'s prefetch, else one query."""
    jobs = getattr(asset, LATEST_JOBS_ATTR, None)
    if jobs is None:
        return Job.objects.latest_for(asset)
    return jobs[0] if jobs else None


class Job(models.Model):
    """One run of the pipeline over one asset; every stage change is saved and streamed."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="jobs")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.UPLOADING, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    # {"detecting": {"started_at": iso, "ended_at": iso, "seconds": 1.2}, ...}; reports read it in SQL.
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    rq_job_id = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["asset", "-created_at"])]

    def __str__(self):
        return f"Job {self.pk} ({self.stage})"

    @property
    def is_finished(self) -> bool:
        return self.stage in TERMINAL_STAGES

    @classmethod
    def create_queued(cls, asset: Asset, *, uploading_since: datetime | None = None, rq_job_id: str = "") -> Job:
        """A new job waiting for a worker, in one INSERT and one event: nobody can see the row
        before its transaction commits, so an ``uploading`` stage (timed from ``uploading_since``)
        is already over by then and would only be announced stale."""
        job = cls(asset=asset, rq_job_id=rq_job_id)
        if uploading_since is not None:
            job._enter(Stage.UPLOADING, progress=0, at=uploading_since)
        job._enter(Stage.QUEUED)
        job.save(force_insert=True)
        job.publish_on_commit()
        return job

    def advance(self, stage: str, *, progress: int | None = None, error: str = "", error_code: str = "",
                at: datetime | None = None, model_version: str | None = None) -> None:
        """Move to ``stage`` (at ``at``, default now): close the previous stage's timing, save,
        and publish after commit. ``model_version``: the models this run uses, saved with the
        stage its work starts in.

        The one place a stage changes, so timings, the row and the event never disagree.
        """
        self._enter(stage, progress=progress, error=error, error_code=error_code, at=at)
        if model_version is not None:
            self.model_version = model_version
        self.save(update_fields=self._advanced_fields(model_version))
        self.publish_on_commit()

    @classmethod
    def advance_all(cls, jobs: list[Job], stage: str, *, model_version: str | None = None) -> None:
        """``advance`` for the jobs of a batch together: one UPDATE, an event for each."""
        if not jobs:
            return
        now = timezone.now()
        for job in jobs:
            job._enter(stage, at=now)
            job.updated_at = now  # an UPDATE leaves auto_now alone; the recovery sweep reads it
            if model_version is not None:
                job.model_version = model_version
        update_rows(jobs, cls._advanced_fields(model_version))
        for job in jobs:
            job.publish_on_commit()

    @staticmethod
    def _advanced_fields(model_version: str | None) -> list[str]:
        fields = ["stage", "progress", "timings", "error", "error_code", "finished_at", "updated_at"]
        return fields + ["model_version"] * (model_version is not None)

    def _enter(self, stage: str, *, progress: int | None = None, error: str = "", error_code: str = "",
               at: datetime | None = None) -> None:
        """The stage change itself, on this instance only (``advance`` and ``create_queued`` save it)."""
        now = at or timezone.now()
        previous = self.timings.get(self.stage)
        if previous is not None and "ended_at" not in previous and stage != self.stage:
            previous["ended_at"] = now.isoformat()
            started = datetime.fromisoformat(previous["started_at"])
            previous["seconds"] = round((now - started).total_seconds(), 4)
        if stage not in TERMINAL_STAGES and (stage != self.stage or stage not in self.timings):
            self.timings[stage] = {"started_at": now.isoformat()}
        self.stage = stage
        self.progress = progress if progress is not None else STAGE_PROGRESS.get(stage, self.progress)
        self.error = error
        self.error_code = error_code
        if stage in TERMINAL_STAGES:
            self.finished_at = now

    def report_progress(self, progress: int) -> None:
        """Finer progress inside the current stage (video frames, say)."""
        self.progress = max(0, min(100, progress))
        self.save(update_fields=["progress", "updated_at"])
        self.publish_on_commit()

    def fail(self, error: str, code: str = "error") -> None:
        self.advance(Stage.FAILED, progress=self.progress, error=error, error_code=code)

    def publish_on_commit(self) -> None:
        from recognition import events

        event = events.job_event(self)
        owner_id = self.asset.owner_id
        transaction.on_commit(lambda: events.publish(owner_id, event))


class SubjectQuerySet(models.QuerySet):
    def named(self):
        return self.exclude(name="")

    def unnamed(self):
        return self.filter(name="")

    def with_counts(self):
        """``face_count`` (faces shown as this person: dismissed ones are not, and a video
        counts each frame), ``listed_count`` (those the person's page lists: a video track once,
        by its best face) and ``example_count`` (faces used for matching), in one query."""
        shown = models.Q(faces__dismissed=False)
        # FaceQuerySet.one_per_track's rule, seen from the person.
        follower = models.Q(faces__appearance__isnull=False) & ~models.Q(
            faces__appearance__best_face=models.F("faces__pk"))
        return self.annotate(
            face_count=models.Count("faces", filter=shown),
            listed_count=models.Count("faces", filter=shown & ~follower),
            example_count=models.Count("faces", filter=shown & models.Q(faces__is_example=True)),
        )

    def with_cover(self):
        """``cover_face_id``: the face that shows the person best (examples first, then the
        clearest face)."""
        best = Face.objects.filter(subject=models.OuterRef("pk"), dismissed=False).order_by(
            "-is_example", "-quality", "id")
        return self.annotate(cover_face_id=models.Subquery(best.values("id")[:1]))

    def gallery_order(self):
        """Named people A to Z, then unnamed ones, biggest first (needs ``with_counts``)."""
        return self.order_by(
            models.Case(models.When(name="", then=1), default=0), Lower("name"), "-listed_count", "id"
        )


class Subject(models.Model):
    """A person: named by the user, or an unknown cluster (a person without a name yet) that
    clustering formed from similar unknown faces. Naming a cluster is giving it a name."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subjects")
    name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    hidden = models.BooleanField(default=False, help_text="Left out of the people gallery.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = SubjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "owner", name="unique_subject_name_per_owner", condition=~models.Q(name=""),
            ),
        ]
        indexes = [models.Index(fields=["owner", "name"], name="subject_owner_name")]

    def __str__(self):
        return self.display_name

    @property
    def is_named(self) -> bool:
        return bool(self.name)

    @property
    def display_name(self) -> str:
        return self.name or f"Unnamed person {self.pk}"


def crop_path(face, filename: str) -> str:
    """Crops are named by face and job: a re-run writes a new file, the old one goes after commit."""
    return f"crops/{face.owner_id}/{face.asset_id}/{face.pk}-{face.job_id}.jpg"


def frame_path(appearance, filename: str) -> str:
    return f"crops/{appearance.owner_id}/{appearance.asset_id}/appearance-{appearance.pk}-{appearance.job_id}.jpg"


class AppearanceQuerySet(models.QuerySet):
    def of_person(self, subject_id):
        return self.filter(best_face__subject_id=subject_id)


class Appearance(models.Model):
    """One person's track through one video: from when to when they are seen, their best face,
    and the track's representative embedding. Who they are is decided for the track as a whole
    (so one misrecognised frame does not make a person) and kept on its faces, all alike: the
    appearance's person is its best face's. Per-frame faces keep their boxes and crops."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="appearances")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="appearances")
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="appearances")
    start_seconds = models.FloatField()
    end_seconds = models.FloatField()
    best_face = models.ForeignKey("Face", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    embedding = VectorField(dimensions=FACE_EMBEDDING_DIMENSIONS)
    face_count = models.PositiveIntegerField()
    frame = models.FileField(upload_to=frame_path, max_length=255, blank=True,
                             help_text="The frame of the best face, small, as JPEG.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppearanceQuerySet.as_manager()

    class Meta:
        ordering = ["asset_id", "start_seconds", "id"]

    def __str__(self):
        return f"appearance in asset {self.asset_id}, {self.start_seconds:.1f}–{self.end_seconds:.1f} s"

    @property
    def subject(self):
        return self.best_face.subject if self.best_face_id and self.best_face.subject_id else None

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.start_seconds


class FaceQuerySet(models.QuerySet):
    def examples(self):
        return self.filter(is_example=True)

    def shown(self):
        """Faces that are faces: a dismissed false positive ("not a face") is hidden."""
        return self.filter(dismissed=False)

    def one_per_track(self):
        """A video track by its best face only (photos' faces all): what people count as faces."""
        return self.exclude(models.Q(appearance__isnull=False) & ~models.Q(appearance__best_face=models.F("pk")))


class Decider(models.TextChoices):
    AUTO = "auto"  # matching or clustering
    HUMAN = "human"  # a person named it, dismissed it, or enrolled it


class Face(models.Model):
    """One detected face: where it is, how good it is, its embedding, and who it is."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="faces")
    # Denormalised from the asset so the nearest-neighbour queries filter on a plain column.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="faces")
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="faces")
    # Video faces: which sampled frame, at what time. Null for photos.
    frame_index = models.PositiveIntegerField(null=True, blank=True)
    timestamp = models.FloatField(null=True, blank=True)
    box = models.JSONField()  # [x1, y1, x2, y2] in pixels of the (EXIF-upright) image
    landmarks = models.JSONField()  # [[x, y] × 5]: eyes, nose, mouth corners
    score = models.FloatField()
    quality = models.FloatField()
    embedding = VectorField(dimensions=FACE_EMBEDDING_DIMENSIONS)
    model_version = models.CharField(max_length=200)
    subject = models.ForeignKey(Subject, on_delete=models.SET_NULL, null=True, blank=True, related_name="faces")
    match_distance = models.FloatField(null=True, blank=True)
    # Used for matching: an enrolled example, or a face a person named (clear enough to teach).
    is_example = models.BooleanField(default=False)
    # Who decided ``subject`` (and ``dismissed``), and when; human decisions survive every re-run.
    decided_by = models.CharField(max_length=5, choices=Decider.choices, default=Decider.AUTO)
    decided_at = models.DateTimeField(null=True, blank=True)
    # "Not a face": a false positive a person dismissed; never shown, matched or clustered.
    dismissed = models.BooleanField(default=False)
    # Video faces: the track (appearance) they belong to; its identity is theirs.
    appearance = models.ForeignKey(Appearance, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="faces")
    # The face with a margin, as a small JPEG written by the pipeline: pages never decode media.
    crop = models.FileField(upload_to=crop_path, max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = FaceQuerySet.as_manager()

    class Meta:
        ordering = ["asset_id", "frame_index", "-quality", "id"]
        indexes = [
            # dlib's distance is Euclidean: L2 operator class.
            HnswIndex(
                name="face_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_l2_ops"],
            ),
            # Identification searches only enrolled examples: a small partial index of its own.
            HnswIndex(
                name="face_example_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_l2_ops"],
                condition=models.Q(is_example=True),
            ),
            models.Index(fields=["owner", "is_example"]),
            models.Index(fields=["owner", "subject"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_example=False) | models.Q(subject__isnull=False),
                name="example_face_has_subject",
            ),
            models.CheckConstraint(
                condition=models.Q(dismissed=False) | models.Q(subject__isnull=True, is_example=False),
                name="dismissed_face_has_no_subject",
            ),
        ]

    def __str__(self):
        who = self.subject.display_name if self.subject_id else "unknown"
        return f"Face {self.pk} in asset {self.asset_id} ({who})"

    @property
    def frame_key(self) -> tuple[int, int]:
        """Faces sharing this are in one picture (a photo, or one frame of a video): never one person."""
        return (self.asset_id, self.frame_index if self.frame_index is not None else -1)


class FaceRejection(models.Model):
    """"Not this person": a person's word that ``face`` is not ``subject``. Nothing automatic
    assigns that face to that person again, re-runs included."""

    face = models.ForeignKey(Face, on_delete=models.CASCADE, related_name="rejections")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="rejections")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["face", "subject"], name="unique_rejection")]

    def __str__(self):
        return f"face {self.face_id} is not {self.subject_id}"


class ErasedFace(models.Model):
    """Where an erased person's face was (a box, nothing biometric): a re-run of the photo
    drops detections here instead of storing that person's face again."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="erased_faces")
    frame_index = models.PositiveIntegerField(null=True, blank=True)
    box = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"erased face in asset {self.asset_id}"


class ImageTag(models.Model):
    """What the whole picture shows (ImageNet classes), a few per asset."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="tags")
    label = models.CharField(max_length=100, db_index=True)
    probability = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["asset_id", "rank"]
        constraints = [models.UniqueConstraint(fields=["asset", "rank"], name="unique_tag_rank_per_asset")]

    def __str__(self):
        return f"{self.label} ({self.probability:.2f})"

    @property
    def is_likely(self) -> bool:
        """More likely than not (``tagging.LIKELY_PROBABILITY``): below, pages call it a guess."""
        return self.probability >= tagging.LIKELY_PROBABILITY


class ImageEmbedding(models.Model):
    """The whole image as one vector, for similar-image search (cosine)."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="image_embedding")
    embedding = VectorField(dimensions=IMAGE_EMBEDDING_DIMENSIONS)
    model_version = models.CharField(max_length=200)

    class Meta:
        indexes = [
            HnswIndex(
                name="image_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]


@receiver(post_delete, sender=Face)
@receiver(post_delete, sender=Appearance)
def delete_stored_crops(sender, instance, **kwargs):
    """A face's crop (an appearance's frame) goes with it, once the delete is committed."""
    stored = instance.crop if sender is Face else instance.frame
    if stored and stored.name:
        storage, name = stored.storage, stored.name
        transaction.on_commit(lambda: storage.delete(name), using=kwargs.get("using"))
