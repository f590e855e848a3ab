"""One asset through the stages: the only place that both runs the engine and writes rows.

    detecting    decode the photo (or sample the video) and find faces
    enhancing    score and correct each face, align it to a 150×150 chip
    recognizing  embed the chips, match them against enrolled people (pgvector), tag the image
    completed    everything written in one transaction

Photos go through the stages one after the other. Videos are decoded in batches of frames so
memory stays bounded: detection and alignment of every batch happen in ``detecting`` (the
chips are kept, the frames are not), quality and embeddings follow.

Re-running is idempotent: results replace the asset's previous faces and tags in one
transaction, and a run that finds a newer attempt in charge of the job writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from media import services as media_services
from media.models import Asset
from recognition import inference, search
from recognition.models import SAME_FACE_IOU, Face, ImageEmbedding, ImageTag, Job, Stage, box_iou

logger = logging.getLogger(__name__)

TAGS_PER_IMAGE = 5


class StaleRun(Exception):
    """A newer attempt owns the job; this run's results are dropped."""


@dataclass
class FoundFace:
    frame_index: int | None
    timestamp: float | None
    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float
    quality: float
    embedding: np.ndarray


def run(job: Job) -> None:
    asset = job.asset
    attempt = job.attempts
    engine = inference.face_engine()
    job.model_version = engine.model_version
    job.save(update_fields=["model_version", "updated_at"])

    job.advance(Stage.DETECTING)
    if asset.kind == Asset.Kind.VIDEO:
        found, tag_image = _analyze_video(job, engine)
    else:
        found, tag_image = _analyze_photo(job, engine)

    job.advance(Stage.RECOGNIZING)
    groups = [face.frame_index or 0 for face in found]
    embeddings = np.stack([face.embedding for face in found]) if found else np.zeros((0, 128), np.float32)
    matches, _ = search.identify(asset.owner_id, embeddings, groups=groups)
    tags, image_embedding = inference.image_tagger().tag_and_embed([tag_image], top_k=TAGS_PER_IMAGE)
    _save_results(job, attempt, found, matches, tags[0], image_embedding[0], engine.model_version)


def _analyze_photo(job: Job, engine) -> tuple[list[FoundFace], np.ndarray]:
    image = media_services.load_image(job.asset)
    detections = engine.detect([image])
    job.advance(Stage.ENHANCING)
    prepared = engine.prepare([image], detections)
    faces = engine.describe(detections, prepared)[0]
    return [FoundFace(None, None, f.box, f.landmarks, f.score, f.quality, f.embedding) for f in faces], image


def _analyze_video(job: Job, engine) -> tuple[list[FoundFace], np.ndarray]:
    asset = job.asset
    every = settings.SIGHTLINE_VIDEO_SAMPLE_SECONDS
    limit = settings.SIGHTLINE_VIDEO_MAX_FRAMES
    expected = max(1, min(limit, int((asset.duration_seconds or every) / every) + 1))
    batch_size = settings.SIGHTLINE_VIDEO_FRAME_BATCH
    found: list[FoundFace] = []
    tag_image = None
    batch: list[media_services.VideoFrame] = []
    processed = 0

    def flush():
        nonlocal processed
        images = [frame.image for frame in batch]
        detections = engine.detect(images)
        prepared = engine.prepare(images, detections)
        for frame, faces in zip(batch, engine.describe(detections, prepared)):
            found.extend(
                FoundFace(frame.index, frame.timestamp, f.box, f.landmarks, f.score, f.quality, f.embedding)
                for f in faces
            )
        processed += len(batch)
        batch.clear()
        job.report_progress(10 + int(50 * min(1.0, processed / expected)))

    for frame in media_services.iter_video_frames(asset, every_seconds=every, max_frames=limit):
        if tag_image is None:
            tag_image = frame.image
        batch.append(frame)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    job.advance(Stage.ENHANCING)
    return found, tag_image


def _save_results(job, attempt, found, matches, tags, image_embedding, model_version) -> None:
    asset = job.asset
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.attempts != attempt or current.is_finished:
            raise StaleRun(f"job {job.pk}: attempt {attempt} superseded (now {current.attempts}, {current.stage})")
        Face.objects.filter(asset=asset, is_example=False).delete()
        examples = list(Face.objects.filter(asset=asset, is_example=True))
        new_faces = []
        for face, match in zip(found, matches):
            example = next(
                (e for e in examples if e.frame_index == face.frame_index and box_iou(e.box, face.box) >= SAME_FACE_IOU),
                None,
            )
            if example is not None:
                # The enrolled face itself: refresh it rather than add a twin.
                example.embedding = face.embedding
                example.model_version = model_version
                example.job = job
                example.save(update_fields=["embedding", "model_version", "job"])
                continue
            new_faces.append(
                Face(
                    asset=asset,
                    owner_id=asset.owner_id,
                    job=job,
                    frame_index=face.frame_index,
                    timestamp=face.timestamp,
                    box=[round(float(v), 2) for v in face.box],
                    landmarks=np.round(face.landmarks.astype(float), 2).tolist(),
                    score=float(face.score),
                    quality=float(face.quality),
                    embedding=face.embedding,
                    model_version=model_version,
                    subject_id=match.subject_id if match else None,
                    match_distance=match.distance if match else None,
                )
            )
        Face.objects.bulk_create(new_faces)
        ImageTag.objects.filter(asset=asset).delete()
        ImageTag.objects.bulk_create(
            ImageTag(asset=asset, label=label, probability=float(p), rank=rank) for rank, (label, p) in enumerate(tags)
        )
        ImageEmbedding.objects.update_or_create(
            asset=asset,
            defaults={"embedding": image_embedding, "model_version": inference.image_tagger().model_id},
        )
        job.advance(Stage.COMPLETED)
    logger.info(
        "asset processed",
        extra={"job": job.pk, "asset": asset.pk, "faces": len(found), "recognised": sum(m is not None for m in matches)},
    )
