"""Example faces of a person: enrol from a photo or from a detected face, un-enrol.

Enrolling from a photo stores it like any upload, asks a model process for its faces (the
caller says how: the API waits on the realtime worker, a command runs the engine in-process),
then keeps exactly one face as the example. A photo stored only for an enrolment that failed is
deleted again, so a refused enrolment leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.refusals import Refusal
from media import services as media_services
from media.models import Asset
from media.validation import RejectedUpload
from recognition import services
from recognition.models import SAME_FACE_IOU, Decider, Face, Subject, box_iou
from recognition.people import corrections

# Takes a stored photo, returns ``jobs.analyze_stored_photo``'s payload.
PhotoAnalyzer = Callable[[Asset], dict]


class EnrollmentError(Refusal):
    """An enrolment we refuse; ``faces`` lists what was found so the caller can choose one."""

    def __init__(self, message: str, code: str, status: int = 400, faces: list[dict] | None = None):
        super().__init__(message, code, status, **({"faces": faces} if faces else {}))
        self.faces = faces or []


def face_choices(faces: list[dict]) -> list[dict]:
    """What a caller needs to pick a face: its index, box, detector score and quality."""
    return [
        {"index": i, "box": face["box"], "score": round(face["score"], 4), "quality": round(face["quality"], 4)}
        for i, face in enumerate(faces)
    ]


def choose_face(faces: list[dict], face_index: int | None, min_quality: float | None = None) -> dict:
    """The one face to enrol: the caller's choice, else the only face of usable quality;
    otherwise say why not.

    Without a choice, faces under ``min_quality`` (tiny, blurred or turned away; in practice
    mostly the detector's false positives in the background) do not count, so a portrait with
    something face-like behind the person still enrols the person.
    """
    min_quality = settings.SIGHTLINE_ENROL_MIN_QUALITY if min_quality is None else min_quality
    choices = face_choices(faces)
    if face_index is not None:
        if 0 <= face_index < len(faces):
            return faces[face_index]
        raise EnrollmentError(
            f"face_index {face_index} is out of range: the photo has {len(faces)} face(s).",
            "face_index_out_of_range", faces=choices,
        )
    if not faces:
        raise EnrollmentError("No face was found in this photo; an example needs exactly one face.", "no_face")
    usable = [face for face in faces if face["quality"] >= min_quality]
    if len(usable) == 1:
        return usable[0]
    if not usable:
        raise EnrollmentError(
            f"No face in this photo is clear enough for an example (quality under {min_quality:g}: too small, "
            f"blurred or turned away); use a better photo, or choose one with face_index anyway.",
            "low_quality", faces=choices,
        )
    raise EnrollmentError(
        f"{len(usable)} faces were found in this photo; say which one to enrol with face_index "
        f"(0 to {len(faces) - 1}, biggest face first).",
        "several_faces", faces=choices,
    )


def enroll_photo(subject: Subject, uploaded_file, original_name: str | None, analyze: PhotoAnalyzer,
                 face_index: int | None = None) -> Face:
    """Store the photo for the subject's owner, find its faces, enrol one as an example, and
    process the photo like any upload. Returns the example face.

    Raises RejectedUpload (the file), EnrollmentError (the faces), or whatever ``analyze``
    raises (services.RealtimeUnavailable, say); a photo newly stored for this call is deleted
    again in every one of those cases, unless an upload of the same bytes claimed it meanwhile.
    """
    # Committed before the analysis: a worker process reads the photo from the database.
    ingested = media_services.ingest_upload(subject.owner, uploaded_file, original_name)
    asset = ingested.asset
    try:
        if asset.kind != Asset.Kind.IMAGE:
            raise EnrollmentError("An example must be a photo, not a video.", "not_an_image", 415)
        analysis = analyze(asset)
        if "rejected" in analysis:
            rejected = analysis["rejected"]
            raise RejectedUpload(rejected["message"], rejected["code"], rejected["status"])
        chosen = choose_face(analysis["faces"], face_index)
        with transaction.atomic():
            face = _example_face(subject, asset, chosen, analysis["model_version"])
            services.ensure_processing(asset)
    except BaseException:
        if ingested.created:
            services.discard_unclaimed(asset)
        raise
    return face


def _example_face(subject: Subject, asset: Asset, found: dict, model_version: str) -> Face:
    """The photo's stored face at that place (already processed photos), else a new one."""
    stored = [f for f in Face.objects.select_for_update().filter(asset=asset, frame_index__isnull=True)]
    same = max(stored, key=lambda f: box_iou(f.box, found["box"]), default=None)
    if same is not None and box_iou(same.box, found["box"]) >= SAME_FACE_IOU:
        return enroll_face(subject, same)
    return Face.objects.create(
        asset=asset,
        owner_id=asset.owner_id,
        decided_by=Decider.HUMAN,
        decided_at=timezone.now(),
        box=found["box"],
        landmarks=found["landmarks"],
        score=found["score"],
        quality=found["quality"],
        embedding=np.asarray(found["embedding"], dtype=np.float32),
        model_version=model_version,
        subject=subject,
        is_example=True,
    )


def enroll_face(subject: Subject, face: Face) -> Face:
    """Make an existing face an example of ``subject`` (a person's decision, and used for
    matching whatever its quality: the caller chose it); both must belong to the same owner."""
    if face.owner_id != subject.owner_id:
        raise EnrollmentError("This face belongs to someone else's photo.", "foreign_face")
    face = corrections.name_face(face, subject)
    if not face.is_example:
        face.is_example = True
        face.save(update_fields=["is_example"])
    return face


def unenroll_face(face: Face) -> Face:
    """Stop using the face for matching. It keeps its person: it still shows them."""
    face.is_example = False
    face.save(update_fields=["is_example"])
    return face
