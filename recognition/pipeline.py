"""One asset through the stages: the only place that both runs the engine and writes rows.
Each stage's recorded seconds are the work it names, for photos and videos alike:

    detecting    decode the photo, or the video's frames at ``SIGHTLINE_VIDEO_FPS``, and find
                 the faces (progress moves with the frames)
    enhancing    score each face's quality, align it to a 150×150 chip, correct it, and cut
                 its crop (a video is decoded again for this, frame batch by frame batch)
    recognizing  embed the chips, link a video's faces into tracks (appearances), match them
                 against the owner's people (pgvector), cluster the unknown, tag the picture
    completed    faces, appearances, crops and tags written in one transaction

Memory stays bounded for long videos: frames are decoded and processed a batch at a time and
never kept; what crosses from one stage to the next is per face and small (boxes, 150×150
uint8 chips in a temporary file, JPEG crops) plus a tiny thumbnail per sampled frame.

Photos waiting together go through together (``run_photos``, fed by the worker's batch in
``jobs.process_asset``): one engine call per stage for all of them, each job still with its own
stages, timings, events and transaction, and a photo that breaks a step failing alone.

Re-running is idempotent: results replace the asset's previous faces, appearances and tags in
one transaction, carrying over every human decision (``face_results``), and a run that finds a
newer attempt in charge of the job writes nothing. New unknown faces are then clustered
(``people.clustering``), one per appearance.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import transaction
from PIL import Image
from rq.timeouts import JobTimeoutException

from media import services as media_services
from recognition import face_results, inference, tagging
from recognition.engine import FaceEngine
from recognition.engine.detector import Detections
from recognition.engine.tracker import SampledFace, Track, scene_cuts, track_faces
from recognition.models import ImageEmbedding, ImageTag, Job, Stage
from recognition.people import clustering

logger = logging.getLogger(__name__)

TAGS_PER_IMAGE = 5
EMBED_BATCH = 64
SCENE_THUMB_SIDE = 64  # sampled frames kept this small, for scene cuts
FRAME_SIDE = 480  # an appearance's best frame is stored this big
# Progress (percent) each stage spans; the pipeline reports within them.
DETECTING_SPAN = (10, 40)
ENHANCING_SPAN = (45, 60)
RECOGNIZING_SPAN = (65, 90)


# The worker's alarm stops the whole run: never one photo's problem, never retried photo by photo.
ENDS_THE_RUN = (JobTimeoutException,)


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
    crop: bytes = field(repr=False, default=b"")


@dataclass
class Detected:
    """What ``detecting`` leaves: per sampled picture, its detections."""

    frames: list  # media_services.VideoFrame without pixels for videos; the photo's one entry
    detections: list  # engine Detections, one per frame
    tag_image: np.ndarray | None = None  # a video's first frame
    thumbnails: list = field(default_factory=list)  # tiny frames, for scene cuts (videos)

    @property
    def face_count(self) -> int:
        return sum(len(d) for d in self.detections)


@dataclass
class Prepared:
    """What ``enhancing`` leaves: every face's chip (in a temporary file), quality and crop."""

    chips: np.ndarray  # (N, 3, 150, 150) uint8, a memmap for videos
    quality: np.ndarray
    crops: list[bytes]
    frames: dict[int, bytes] = field(default_factory=dict)  # frame index → small JPEG (videos)


def run_video(job: Job) -> None:
    """One video; raises what went wrong (``jobs.process_asset`` decides what it means)."""
    attempt = job.attempts
    engine = _start(job)
    detected = _detect_video(job, engine)

    job.advance(Stage.ENHANCING)
    with tempfile.TemporaryDirectory(prefix="sightline-chips-") as scratch:
        prepared = _enhance_video(job, engine, detected, scratch)

        job.advance(Stage.RECOGNIZING)
        embeddings = _embed(job, engine, prepared.chips)
    found = _found_faces(detected, prepared, embeddings)
    tracks = _tracks(detected, found)
    tags, image_embedding = inference.image_tagger().tag_and_embed([detected.tag_image], top_k=TAGS_PER_IMAGE)
    _save_results(job, attempt, found, tracks, prepared.frames, tags[0], image_embedding[0], engine.model_version)


def run_photos(jobs: list[Job]) -> dict[int, Exception | None]:
    """Photos through the stages together: each stage is one engine call for all of them
    (detection, alignment, embedding, tagging), while every job keeps its own stages, timings
    and events, and is saved in its own transaction.

    Returns each job's problem (None when it completed). A problem is one job's alone: a photo
    that cannot be decoded or saved fails by itself, and a batched engine call that raises is
    repeated photo by photo so that only the photo that causes it fails. Timeouts (raised by
    the worker's alarm, not ``Exception``) end the whole call.
    """
    problems: dict[int, Exception | None] = {}
    attempts = {job.pk: job.attempts for job in jobs}
    engine = inference.face_engine()
    images: dict[int, np.ndarray] = {}
    Job.advance_all(jobs, Stage.DETECTING, model_version=engine.model_version)
    for job in jobs:
        try:
            images[job.pk] = media_services.load_image(job.asset)
        except ENDS_THE_RUN:
            raise
        except Exception as exc:
            problems[job.pk] = exc
    live = [job for job in jobs if job.pk in images]

    live, found = _succeeded(live, _one_by_one_on_failure(engine.detect, [images[job.pk] for job in live]), problems)
    detections = {job.pk: faces for job, faces in zip(live, found)}
    Job.advance_all(live, Stage.ENHANCING)

    def prepare(pairs):
        prepared = engine.prepare([image for image, _ in pairs], [faces for _, faces in pairs])
        chips, counts = engine.chips_uint8(prepared), np.cumsum([0] + [len(faces) for _, faces in pairs])
        return [(chips[a:b], prepared.quality[a:b]) for a, b in zip(counts[:-1], counts[1:])]

    live, chipped = _succeeded(
        live, _one_by_one_on_failure(prepare, [(images[job.pk], detections[job.pk]) for job in live]), problems
    )
    prepared = {
        job.pk: Prepared(chips, quality, _crops(images[job.pk], detections[job.pk]))
        for job, (chips, quality) in zip(live, chipped)
    }
    Job.advance_all(live, Stage.RECOGNIZING)

    def embed(chip_sets):
        embeddings, counts = _embed(None, engine, np.concatenate(chip_sets)), np.cumsum([0] + [len(c) for c in chip_sets])
        return [embeddings[a:b] for a, b in zip(counts[:-1], counts[1:])]

    live, embedded = _succeeded(live, _one_by_one_on_failure(embed, [prepared[job.pk].chips for job in live]), problems)
    tagger = inference.image_tagger()

    def tag(pictures):
        tags, image_embeddings = tagger.tag_and_embed(pictures, top_k=TAGS_PER_IMAGE)
        return list(zip(tags, image_embeddings))

    tagged = _one_by_one_on_failure(tag, [images[job.pk] for job in live])
    for job, embeddings, tags in zip(live, embedded, tagged):
        if isinstance(tags, Exception):
            problems[job.pk] = tags
            continue
        detected = Detected([media_services.VideoFrame(None, None, None)], [detections[job.pk]])
        try:
            found = _found_faces(detected, prepared[job.pk], embeddings)
            _save_results(job, attempts[job.pk], found, None, {}, tags[0], tags[1], engine.model_version)
        except ENDS_THE_RUN:
            raise
        except Exception as exc:
            problems[job.pk] = exc
    return {job.pk: problems.get(job.pk) for job in jobs}


def _start(job: Job) -> FaceEngine:
    """Into ``detecting``, with the models that will run recorded in the same UPDATE."""
    engine = inference.face_engine()
    job.advance(Stage.DETECTING, model_version=engine.model_version)
    return engine


def _one_by_one_on_failure(step, items: list) -> list:
    """``step`` (items → one result per item) on all items at once; if that raises, on each
    item alone, so the result of an item that breaks it is its exception."""
    if not items:
        return []
    try:
        return step(items)
    except ENDS_THE_RUN:
        raise
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        logger.warning("batched step failed, repeating it photo by photo", exc_info=True)
    results = []
    for item in items:
        try:
            results.extend(step([item]))
        except ENDS_THE_RUN:
            raise
        except Exception as exc:
            results.append(exc)
    return results


def _succeeded(jobs: list[Job], results: list, problems: dict) -> tuple[list[Job], list]:
    """The jobs whose result is not an exception, with their results; the others' go to ``problems``."""
    kept = []
    for job, result in zip(jobs, results):
        if isinstance(result, Exception):
            problems[job.pk] = result
        else:
            kept.append((job, result))
    return [job for job, _ in kept], [result for _, result in kept]


# --- detecting ---------------------------------------------------------------------------------


def _video_frames(asset, max_side: int | None = None):
    every = 1.0 / settings.SIGHTLINE_VIDEO_FPS
    return media_services.iter_video_frames(asset, every_seconds=every, max_frames=settings.SIGHTLINE_VIDEO_MAX_FRAMES,
                                            max_side=max_side)


def _to_full_size(detections, image: np.ndarray, asset):
    """Detections found on a reduced frame, in the full frame's pixels."""
    factor_x, factor_y = asset.width / image.shape[1], asset.height / image.shape[0]
    if len(detections) == 0 or (abs(factor_x - 1) < 1e-6 and abs(factor_y - 1) < 1e-6):
        return detections
    scale = np.array([factor_x, factor_y], np.float32)
    return Detections(detections.boxes * np.tile(scale, 2), detections.landmarks * scale, detections.scores)


def _expected_frames(asset) -> int:
    duration = asset.duration_seconds or 0
    return max(1, min(settings.SIGHTLINE_VIDEO_MAX_FRAMES, int(duration * settings.SIGHTLINE_VIDEO_FPS) + 1))


def _in_span(span: tuple[int, int], done: int, total: int) -> int:
    return span[0] + int((span[1] - span[0]) * min(1.0, done / max(1, total)))


def _detect_video(job: Job, engine) -> Detected:
    """Faces are found on frames decoded at most ``SIGHTLINE_VIDEO_DETECT_SIDE`` pixels wide
    when that is set (a 1080p frame at half size: a quarter of the detector's work), then placed
    in the full frame, which ``enhancing`` aligns them from."""
    asset = job.asset
    detected = Detected([], [])
    expected = _expected_frames(asset)
    batch: list = []

    def flush():
        for frame, found in zip(batch, engine.detect([f.image for f in batch])):
            detected.frames.append(media_services.VideoFrame(frame.index, frame.timestamp, None))
            detected.detections.append(_to_full_size(found, frame.image, asset))
        batch.clear()
        job.report_progress(_in_span(DETECTING_SPAN, len(detected.frames), expected))

    for frame in _video_frames(asset, max_side=settings.SIGHTLINE_VIDEO_DETECT_SIDE or None):
        if detected.tag_image is None:
            detected.tag_image = frame.image
        detected.thumbnails.append(_small(frame.image, SCENE_THUMB_SIDE))
        batch.append(frame)
        if len(batch) >= settings.SIGHTLINE_VIDEO_FRAME_BATCH:
            flush()
    if batch:
        flush()
    return detected


def _small(image: np.ndarray, side: int) -> np.ndarray:
    picture = Image.fromarray(image)
    picture.thumbnail((side, side), Image.Resampling.BILINEAR)
    return np.asarray(picture)


# --- enhancing ---------------------------------------------------------------------------------


def _crops(image: np.ndarray, detections) -> list[bytes]:
    crops = []
    for box in detections.boxes:
        try:
            crops.append(media_services.crop_jpeg(image, box))
        except ValueError:
            crops.append(b"")  # a box outside the picture: no crop, the face stays
    return crops


def _enhance_video(job: Job, engine, detected: Detected, scratch: str) -> Prepared:
    """Decode the sampled frames again; align, correct and score the faces of those with faces.
    Chips go to a temporary file, so a long video's faces never sit in memory together."""
    total = detected.face_count
    chips = np.lib.format.open_memmap(f"{scratch}/chips.npy", mode="w+", dtype=np.uint8,
                                      shape=(total, 3, 150, 150)) if total else np.zeros((0, 3, 150, 150), np.uint8)
    quality = np.zeros(total, np.float32)
    crops: list[bytes] = []
    frames: dict[int, bytes] = {}
    wanted = {frame.index: found for frame, found in zip(detected.frames, detected.detections) if len(found)}
    batch: list = []
    offset = 0

    def flush():
        nonlocal offset
        found = [wanted[frame.index] for frame in batch]
        prepared = engine.prepare([frame.image for frame in batch], found)
        count = len(prepared.quality)
        chips[offset:offset + count] = engine.chips_uint8(prepared)
        quality[offset:offset + count] = prepared.quality
        for frame, detections in zip(batch, found):
            crops.extend(_crops(frame.image, detections))
            frames[frame.index] = media_services.make_thumbnail(frame.image, side=FRAME_SIDE)
        offset += count
        batch.clear()
        job.report_progress(_in_span(ENHANCING_SPAN, offset, total))

    if wanted:
        for frame in _video_frames(job.asset):
            if frame.index in wanted:
                batch.append(frame)
                if len(batch) >= settings.SIGHTLINE_VIDEO_FRAME_BATCH:
                    flush()
        if batch:
            flush()
    if offset != total:
        raise RuntimeError(f"the video decoded differently the second time ({offset} of {total} faces)")
    return Prepared(chips, quality, crops, frames)


# --- recognizing -------------------------------------------------------------------------------


def _embed(job: Job | None, engine, chips: np.ndarray) -> np.ndarray:
    """Embeddings of ``chips``, ``EMBED_BATCH`` at a time (reporting a video's progress)."""
    embeddings = np.zeros((len(chips), 128), np.float32)
    for start in range(0, len(chips), EMBED_BATCH):
        embeddings[start:start + EMBED_BATCH] = engine.embed_prepared(chips[start:start + EMBED_BATCH])
        if job is not None and len(chips) > EMBED_BATCH:
            job.report_progress(_in_span(RECOGNIZING_SPAN, start + EMBED_BATCH, len(chips)))
    return embeddings


def _found_faces(detected: Detected, prepared: Prepared, embeddings: np.ndarray) -> list[FoundFace]:
    found, i = [], 0
    for frame, detections in zip(detected.frames, detected.detections):
        for k in range(len(detections)):
            found.append(FoundFace(
                frame.index, frame.timestamp, tuple(float(v) for v in detections.boxes[k]),
                detections.landmarks[k].copy(), float(detections.scores[k]), float(prepared.quality[i]),
                embeddings[i], prepared.crops[i],
            ))
            i += 1
    return found


def _tracks(detected: Detected, found: list[FoundFace]) -> list[Track]:
    sample_of = {frame.index: n for n, frame in enumerate(detected.frames)}
    faces = [SampledFace(sample_of[f.frame_index], f.timestamp, f.box, f.embedding, f.quality) for f in found]
    return track_faces(faces, cuts=scene_cuts(detected.thumbnails))


def _save_results(job, attempt, found, tracks, frames, tags, image_embedding, model_version) -> None:
    asset = job.asset
    written: list = []
    try:
        with transaction.atomic():
            current = Job.objects.select_for_update().get(pk=job.pk)
            if current.attempts != attempt or current.is_finished:
                raise StaleRun(f"job {job.pk}: attempt {attempt} superseded (now {current.attempts}, {current.stage})")
            unknown = face_results.store_faces(job, found, model_version, tracks=tracks, frames=frames,
                                               written=written)
            clustering.cluster_new_faces(asset.owner_id, [face.pk for face in unknown])
            if tracks is not None:  # only a video has tracks (appearances) to follow
                face_results.follow_tracks(asset)
            ImageTag.objects.filter(asset=asset).delete()
            ImageTag.objects.bulk_create(
                ImageTag(asset=asset, label=label, probability=float(p), rank=rank)
                for rank, (label, p) in enumerate(tagging.labels_to_keep(tags, has_faces=bool(found)))
            )
            ImageEmbedding.objects.bulk_create(  # one INSERT … ON CONFLICT (asset) DO UPDATE
                [ImageEmbedding(asset=asset, embedding=image_embedding, model_version=inference.image_tagger().model_id)],
                update_conflicts=True, unique_fields=["asset"], update_fields=["embedding", "model_version"],
            )
            job.advance(Stage.COMPLETED)
    except BaseException:
        face_results.delete_files(written)  # the rows that would name them were rolled back
        raise
    logger.info("asset processed", extra={"job": job.pk, "asset": asset.pk, "faces": len(found),
                                          "appearances": len(tracks) if tracks is not None else None})
