"""An asset's detected faces written over its previous ones, keeping every human decision.

A re-run (or a reindex) detects the faces again. Each new detection takes over the stored face
at the same place (same frame, boxes overlapping by ``SAME_FACE_IOU``), so its id, its crop
links and what people decided about it (a name, "not this person", "not a face") carry over;
only its geometry, embedding and quality are refreshed. Stored faces a person decided about
stay even when the detector no longer finds them; other stored faces without a new detection
are deleted. Detections where an erased person's face was are dropped.

Then the automatic faces are matched: against the faces that teach recognition (examples and
named faces), never to a person a face was rejected from nor to a person already named in the
same picture. A face that matches nobody stays in its person without a name, if it had one,
and otherwise waits for clustering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recognition import search
from recognition.models import SAME_FACE_IOU, Decider, ErasedFace, Face, FaceRejection, box_iou


def frame_group(frame_index: int | None) -> int:
    return -1 if frame_index is None else frame_index


def pair_by_box(stored: Sequence[Face], found: Sequence) -> dict[int, Face]:
    """found index → the stored face it re-detects: same frame, best overlap first."""
    pairs = sorted(
        ((box_iou(face.box, detection.box), i, face.pk, face)
         for i, detection in enumerate(found)
         for face in stored
         if face.frame_index == detection.frame_index),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    taken_found, taken_stored, paired = set(), set(), {}
    for iou, i, pk, face in pairs:
        if iou < SAME_FACE_IOU:
            break
        if i in taken_found or pk in taken_stored:
            continue
        paired[i] = face
        taken_found.add(i)
        taken_stored.add(pk)
    return paired


def without_erased(asset, found: list) -> list:
    erased = list(ErasedFace.objects.filter(asset=asset).values_list("frame_index", "box"))
    return [
        f for f in found
        if not any(frame == f.frame_index and box_iou(box, f.box) >= SAME_FACE_IOU for frame, box in erased)
    ]


def store_faces(job, found: list, model_version: str) -> list[Face]:
    """Write ``found`` (the pipeline's FoundFace list) as the asset's faces; returns the
    automatic faces that are still unknown (for clustering). Call inside a transaction."""
    asset = job.asset
    found = without_erased(asset, found)
    stored = list(Face.objects.filter(asset=asset))
    paired = pair_by_box(stored, found)
    reused = {face.pk for face in paired.values()}
    Face.objects.filter(asset=asset, decided_by=Decider.AUTO).exclude(pk__in=reused).delete()

    faces: list[Face] = []
    for i, detection in enumerate(found):
        face = paired.get(i) or Face(asset=asset, owner_id=asset.owner_id)
        face.job = job
        face.frame_index = detection.frame_index
        face.timestamp = detection.timestamp
        face.box = [round(float(v), 2) for v in detection.box]
        face.landmarks = np.round(detection.landmarks.astype(float), 2).tolist()
        face.score = float(detection.score)
        face.quality = float(detection.quality)
        face.embedding = detection.embedding
        face.model_version = model_version
        faces.append(face)

    _match(asset, [f for f in faces if f.decided_by == Decider.AUTO and not f.dismissed])
    Face.objects.bulk_update(
        [f for f in faces if f.pk], ["job", "frame_index", "timestamp", "box", "landmarks", "score", "quality",
                                     "embedding", "model_version", "subject", "match_distance"],
        batch_size=500,
    )
    Face.objects.bulk_create([f for f in faces if not f.pk], batch_size=500)
    return [f for f in faces if f.decided_by == Decider.AUTO and not f.dismissed and f.subject_id is None]


def _match(asset, faces: list[Face]) -> None:
    if not faces:
        return
    rejected: dict[int, set[int]] = {}
    for face_id, subject_id in FaceRejection.objects.filter(face__asset=asset).values_list("face_id", "subject_id"):
        rejected.setdefault(face_id, set()).add(subject_id)
    named_here = Face.objects.filter(asset=asset, decided_by=Decider.HUMAN, subject__isnull=False)
    taken = {(frame_group(frame), subject_id) for frame, subject_id in named_here.values_list("frame_index", "subject_id")}
    unnamed_clusters = set(
        Face.objects.filter(asset=asset, subject__name="").values_list("subject_id", flat=True)
    )
    embeddings = np.stack([np.asarray(f.embedding, dtype=np.float32) for f in faces])
    matches, _ = search.identify(
        asset.owner_id, embeddings, groups=[frame_group(f.frame_index) for f in faces],
        excluded=[rejected.get(f.pk, set()) for f in faces], taken=taken,
    )
    for face, match in zip(faces, matches):
        if match is not None:
            face.subject_id, face.match_distance = match.subject_id, match.distance
        elif face.subject_id in unnamed_clusters and face.subject_id not in rejected.get(face.pk, ()):
            face.match_distance = None  # stays in its person without a name
        else:
            face.subject_id, face.match_distance = None, None
