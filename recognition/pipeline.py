"""One asset through the stages: the only place that both runs the engine and writes rows.

    detecting    decode the photo (or sample the video) and find faces
    enhancing    score and correct each face, align it to a 150×150 chip
    recognizing  embed the chips, match them against the owner's people (pgvector), cluster the
                 unknown ones, tag the image
    completed    everything written in one transaction

Photos go through the stages one after the other. Videos are decoded in batches of frames so
memory stays bounded: detection and alignment of every batch happen in ``detecting`` (the
chips are kept, the frames are not), quality and embeddings follow.

Re-running is idempotent: results replace the asset's previous faces and tags in one
transaction, carrying over every human decision (``face_results``), and a run that finds a
newer attempt in charge of the job writes nothing. The asset's new unknown faces are then
clustered (``people.clustering``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from media import services as media_services
from media.models import Asset
from recognition import face_results, inference
from recognition.models import ImageEmbedding, ImageTag, Job, Stage
from recognition.people import clustering

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
    tags, image_embedding = inference.image_tagger().tag_and_embed([tag_image], top_k=TAGS_PER_IMAGE)
    _save_results(job, attempt, found, tags[0], image_embedding[0], engine.model_version)


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


def _save_results(job, attempt, found, tags, image_embedding, model_version) -> None:
    asset = job.asset
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.attempts != attempt or current.is_finished:
            raise StaleRun(f"job {job.pk}: attempt {attempt} superseded (now {current.attempts}, {current.stage})")
        unknown = face_results.store_faces(job, found, model_version)
        clustering.cluster_new_faces(asset.owner_id, [face.pk for face in unknown])
        ImageTag.objects.filter(asset=asset).delete()
        ImageTag.objects.bulk_create(
            ImageTag(asset=asset, label=label, probability=float(p), rank=rank) for rank, (label, p) in enumerate(tags)
        )
        ImageEmbedding.objects.update_or_create(
            asset=asset,
            defaults={"embedding": image_embedding, "model_version": inference.image_tagger().model_id},
        )
        job.advance(Stage.COMPLETED)
    logger.info("asset processed", extra={"job": job.pk, "asset": asset.pk, "faces": len(found)})
