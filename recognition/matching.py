"""Answers built in the web process from a model process's findings: who is in a photo
(1:N, nothing stored) and whether two faces are the same person (1:1).

The model half (``jobs.analyze_photo_bytes``) runs on a worker; what happens here is database
and arithmetic only, so web processes never load models.
"""

from __future__ import annotations


import numpy as np

from config.refusals import Refusal
from recognition import search
from recognition.models import Face

DEFAULT_CANDIDATES = 3


class FaceUnavailable(Refusal):
    """No crop is stored for the face (found before crops were stored, or its box lay
    outside the picture): the web process never decodes media to make one."""

    code = "face_unavailable"
    status = 404


def recognition_result(owner_id: int, analysis: dict, limit: int = DEFAULT_CANDIDATES,
                       threshold: float | None = None) -> dict:
    """``analysis`` (faces with embeddings) matched against the owner's enrolled subjects."""
    threshold = search.default_threshold() if threshold is None else threshold
    faces = analysis["faces"]
    embeddings = np.asarray([face["embedding"] for face in faces], dtype=np.float32).reshape(-1, 128)
    assignments, candidates = search.identify(owner_id, embeddings, threshold=threshold)
    return {
        "faces": [
            {
                **face_summary(face),
                "subject": (
                    {"id": match.subject_id, "name": match.subject_name, "distance": round(match.distance, 4)}
                    if match else None
                ),
                "candidates": [
                    {"subject": {"id": c.subject_id, "name": c.subject_name}, "distance": round(c.distance, 4),
                     "votes": c.votes}
                    for c in face_candidates[:limit]
                ],
            }
            for face, match, face_candidates in zip(faces, assignments, candidates)
        ],
        "threshold": threshold,
        "model_version": analysis.get("model_version", ""),
    }


def face_summary(face: dict) -> dict:
    return {key: face[key] for key in ("box", "landmarks", "score", "quality")}


def stored_face_summary(face: Face) -> dict:
    return {"face": face.pk, "asset": face.asset_id, "box": face.box, "landmarks": face.landmarks,
            "score": face.score, "quality": face.quality}


def verification_result(embedding1, embedding2, faces: list[dict], threshold: float | None = None) -> dict:
    threshold = search.default_threshold() if threshold is None else threshold
    distance = search.face_distance(embedding1, embedding2)
    return {"distance": round(distance, 4), "same_person": distance <= threshold, "threshold": threshold,
            "faces": faces}
