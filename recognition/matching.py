"""Answers built in the web process from a model process's findings: who is in a photo
(1:N, nothing stored), whether two faces are the same person (1:1), and face crops.

The model half (``jobs.analyze_photo_bytes``) runs on a worker; what happens here is database
and arithmetic only, so web processes never load models.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from config.refusals import Refusal
from media import services as media_services
from media.validation import RejectedUpload
from recognition import search
from recognition.models import Face

DEFAULT_CANDIDATES = 3
CROP_MARGIN = 0.25  # of the box's size, on every side: a little hair and chin around the face
CROP_MAX_SIDE = 256


class FaceUnavailable(Refusal):
    """The face's pixels cannot be produced (its frame no longer decodes, say)."""

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


def face_crop_jpeg(face: Face) -> bytes:
    """The face with a margin, from its photo or from its video's sampled frame, as JPEG."""
    image = Image.fromarray(_face_pixels(face))
    x1, y1, x2, y2 = face.box
    margin_x, margin_y = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    box = (
        max(0, int(x1 - margin_x)), max(0, int(y1 - margin_y)),
        min(image.width, int(np.ceil(x2 + margin_x))), min(image.height, int(np.ceil(y2 + margin_y))),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise FaceUnavailable("The face's box lies outside its picture.")
    crop = image.crop(box)
    crop.thumbnail((CROP_MAX_SIDE, CROP_MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def _face_pixels(face: Face) -> np.ndarray:
    asset = face.asset
    if not asset.is_video:
        return media_services.load_image(asset)
    if face.frame_index is None or face.timestamp is None:
        raise FaceUnavailable("This video face has no frame recorded.")
    # The very frame the pipeline sampled, found from the keyframe before it: this runs in the
    # web process, and decoding a long video from its start for every crop would not do.
    try:
        return media_services.video_frame_at(asset, face.timestamp, face.frame_index)
    except RejectedUpload:
        raise FaceUnavailable("The video frame of this face could not be decoded again.") from None
