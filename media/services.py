"""What the rest of Sightline calls to store uploads and read them back as pixels.

Everything goes through Django's storage API (local or S3): no local path is assumed.
Pillow and PyAV read the storage's file objects directly. Stored videos are decoded here, in
process: only rq workers do that (the web process probes uploads in a child, see validation).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

import av
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from media.models import Asset
from media.validation import ProbedMedia, RejectedUpload, decode_image, probe_file, sanitize_filename
from media.videoprobe import first_frame, open_video, quarter_turns, video_stream

__all__ = [
    "IngestResult",
    "ProbedMedia",
    "RejectedUpload",
    "VideoFrame",
    "crop_jpeg",
    "decode_uploaded_image",
    "delete_orphaned_files",
    "discard_files",
    "focus_point",
    "focus_thumbnail_on",
    "ingest_upload",
    "iter_video_frames",
    "load_image",
    "make_thumbnail",
    "open_original",
    "probe_file",
    "sanitize_filename",
]

CHUNK_BYTES = 1024 * 1024
THUMBNAIL_SIDE = 320
CROP_MARGIN = 0.25  # of a face box's size, on every side: a little hair and chin around the face
CROP_SIDE = 256


@dataclass(frozen=True)
class IngestResult:
    asset: Asset
    created: bool  # False when the owner already had these bytes


@dataclass(frozen=True)
class VideoFrame:
    index: int  # position of the frame in the decoded stream, from 0
    timestamp: float  # seconds from the first frame
    image: np.ndarray  # H×W×3 uint8 RGB


def ingest_upload(owner, uploaded_file: BinaryIO, original_name: str | None = None) -> IngestResult:
    """Validate and store ``uploaded_file`` for ``owner``, or return the asset they already have
    with the same bytes. Raises RejectedUpload. Runs in the caller's transaction, if any."""
    name = sanitize_filename(original_name if original_name is not None else getattr(uploaded_file, "name", None))
    size = _size_of(uploaded_file)
    _refuse_oversize_early(size)
    sha256 = _sha256_of(uploaded_file)
    existing = Asset.objects.filter(owner=owner, sha256=sha256).first()
    if existing:
        return IngestResult(existing, created=False)

    probed = probe_file(uploaded_file, size, preview_side=THUMBNAIL_SIDE)  # the preview is for the thumbnail
    asset = Asset(
        owner=owner,
        kind=probed.kind,
        original_name=name,
        sha256=sha256,
        size_bytes=size,
        content_type=probed.content_type,
        width=probed.width,
        height=probed.height,
        duration_seconds=probed.duration,
        fps=probed.fps,
        frame_count=probed.frame_count,
    )
    try:
        uploaded_file.seek(0)
        asset.file.save(f"upload.{probed.ext}", File(uploaded_file), save=False)
        asset.thumbnail.save("thumbnail.jpg", ContentFile(make_thumbnail(probed.preview)), save=False)
        with transaction.atomic():
            asset.save()
    except IntegrityError:
        # A concurrent upload of the same bytes won (our INSERT waited for its commit):
        # drop our copy and hand back theirs.
        discard_files(asset)
        winner = Asset.objects.filter(owner=owner, sha256=sha256).first()
        if winner is None:
            raise
        return IngestResult(winner, created=False)
    except BaseException:
        discard_files(asset)  # no row will point at them
        raise
    return IngestResult(asset, created=True)


def decode_uploaded_image(uploaded_file: BinaryIO) -> np.ndarray:
    """Validate like ingest (same limits and errors) and return H×W×3 uint8 RGB, storing nothing.
    A video is refused: this is for endpoints that take one photo."""
    size = _size_of(uploaded_file)
    _refuse_oversize_early(size)
    probed = probe_file(uploaded_file, size)
    if probed.kind != Asset.Kind.IMAGE:
        raise RejectedUpload("An image is required here, not a video.", "not_an_image", 415)
    return np.asarray(probed.preview)


def open_original(asset: Asset) -> File:
    """The stored original, opened for binary reading (close it, or use it as a context manager)."""
    return asset.file.storage.open(asset.file.name, "rb")


def load_image(asset: Asset) -> np.ndarray:
    """The asset's pixels as H×W×3 uint8 RGB, upright; for a video, its first frame."""
    with open_original(asset) as fileobj:
        if asset.is_video:
            with open_video(fileobj) as container:
                image = first_frame(container, video_stream(container))
        else:
            image = decode_image(fileobj)
    return np.asarray(image)


def iter_video_frames(asset: Asset, every_seconds: float = 1.0, max_frames: int | None = None,
                      max_side: int | None = None) -> Iterator[VideoFrame]:
    """Frames sampled every ``every_seconds`` (the first frame at or after 0, every_seconds, …),
    at most ``max_side`` pixels on their long side if given.

    Decode-and-skip rather than seek: every frame is decoded and only those crossing the next
    sampling time are kept, so timestamps are exact and no keyframe snapping happens.
    Raises RejectedUpload("no_frames") if no frame decodes.
    """
    if every_seconds <= 0:
        raise ValueError("every_seconds must be positive.")
    yielded = 0
    with open_original(asset) as fileobj, open_video(fileobj) as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        fallback_fps = float(stream.average_rate or stream.guessed_rate or 25)
        start = None
        next_time = 0.0
        for index, frame in enumerate(_decoded_frames(container, stream)):
            time = frame.time if frame.time is not None else index / fallback_fps
            start = time if start is None else start
            timestamp = time - start
            if timestamp + 1e-6 < next_time:
                continue
            yield VideoFrame(index=index, timestamp=timestamp, image=_frame_pixels(frame, max_side))
            yielded += 1
            if max_frames is not None and yielded >= max_frames:
                return
            while next_time <= timestamp + 1e-6:
                next_time += every_seconds
    if yielded == 0:
        raise RejectedUpload("The video has no frame that can be decoded.", "no_frames", 400)


def crop_jpeg(image: np.ndarray, box, margin: float = CROP_MARGIN, side: int = CROP_SIDE) -> bytes:
    """JPEG bytes of ``box`` ([x1, y1, x2, y2] pixels) of ``image`` with ``margin`` of the box's
    size on every side, at most ``side`` pixels. Raises ValueError for a box outside the image."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    margin_x, margin_y = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - margin_x)), max(0, int(y1 - margin_y))
    right, bottom = min(width, int(np.ceil(x2 + margin_x))), min(height, int(np.ceil(y2 + margin_y)))
    if right <= left or bottom <= top:
        raise ValueError("The box lies outside the picture.")
    crop = Image.fromarray(image[top:bottom, left:right])
    crop.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def focus_point(asset: Asset, box) -> tuple[float | None, float | None]:
    """The centre of ``box`` (x1, y1, x2, y2 in the upright picture's pixels) as fractions of
    the asset's width and height; (None, None) for no box: the middle."""
    if box is None:
        return None, None
    return _fraction((box[0] + box[2]) / 2, asset.width), _fraction((box[1] + box[3]) / 2, asset.height)


def focus_thumbnail_on(asset: Asset, box) -> None:
    """Keep ``box`` (None: the middle) in view where a list crops the asset's thumbnail square.
    A tall portrait cropped at its middle can lose the head."""
    focus = focus_point(asset, box)
    if focus != (asset.focus_x, asset.focus_y):
        asset.focus_x, asset.focus_y = focus
        Asset.objects.filter(pk=asset.pk).update(focus_x=focus[0], focus_y=focus[1])


def _fraction(value: float, whole: int) -> float:
    return round(min(max(value / whole, 0.0), 1.0), 4) if whole else 0.5


def make_thumbnail(image: Image.Image | np.ndarray, side: int = THUMBNAIL_SIDE) -> bytes:
    """JPEG bytes of ``image`` scaled to at most ``side`` pixels on its long side."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    thumbnail = image.convert("RGB")
    # Made inside the upload request: Pillow's default filter (bicubic, reducing by whole
    # factors first) and no second Huffman pass cost 1.8 and 8.0 ms on a 427×240 and an
    # 874×1200 photo, against 2.9 and 11.9 ms with Lanczos and optimize, for a list's picture.
    thumbnail.thumbnail((side, side))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _frame_pixels(frame: av.VideoFrame, max_side: int | None = None) -> np.ndarray:
    """H×W×3 uint8 RGB, upright, at most ``max_side`` pixels on its long side (scaled by the
    decoder's own scaler while converting, which costs less than converting the full frame).
    numpy, not Pillow as ``videoprobe.frame_image``: several times faster per frame, which counts
    when sampling a long video."""
    longest = max(frame.width, frame.height)
    if max_side and longest > max_side:
        scale = max_side / longest
        pixels = frame.to_ndarray(format="rgb24", width=max(2, round(frame.width * scale)),
                                  height=max(2, round(frame.height * scale)), interpolation="AREA")
    else:
        pixels = frame.to_ndarray(format="rgb24")
    turns = quarter_turns(frame)  # counter-clockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def _decoded_frames(container, stream):
    """Decoded frames until the end or the first undecodable stretch (a damaged tail ends the
    video rather than failing it: the frames before it are still worth analysing)."""
    try:
        yield from container.decode(stream)
    except av.FFmpegError:
        return


def discard_files(asset: Asset) -> None:
    """Delete the asset's stored files, for an asset whose row will not exist (rolled back)."""
    for stored in (asset.file, asset.thumbnail):
        if stored:
            stored.delete(save=False)


# Where original_path and thumbnail_path put files; nothing else lives under them.
STORED_FOLDERS = ("assets", "thumbnails")
# Files other apps store beside the assets' (face crops, say): folder → a function that says
# which of some names are still used. Registered by those apps (media knows nothing of faces).
OTHER_STORED_FOLDERS: dict[str, Callable[[list[str]], set[str]]] = {}


def register_stored_folder(folder: str, referenced: Callable[[list[str]], set[str]]) -> None:
    """Let ``cleanup_media`` sweep ``folder`` too, keeping the names ``referenced`` says are used."""
    OTHER_STORED_FOLDERS[folder] = referenced
ORPHAN_BATCH = 500


def delete_orphaned_files(older_than: timedelta, dry_run: bool = False) -> Iterator[str]:
    """Delete (with ``dry_run``, only name) the stored files no asset points at that were last
    changed more than ``older_than`` ago; yields each name.

    They are what a process killed between storing an upload and committing its row leaves,
    or a caller's rolled-back transaction. The age guard spares uploads still in flight.
    """
    storage = Asset._meta.get_field("file").storage
    cutoff = timezone.now() - older_than
    batch: list[str] = []
    for name in _stored_names(storage):
        batch.append(name)
        if len(batch) == ORPHAN_BATCH:
            yield from _delete_unreferenced(storage, batch, cutoff, dry_run)
            batch = []
    yield from _delete_unreferenced(storage, batch, cutoff, dry_run)


def _stored_names(storage) -> Iterator[str]:
    pending = [folder for folder in (*STORED_FOLDERS, *OTHER_STORED_FOLDERS) if storage.exists(folder)]
    while pending:
        folder = pending.pop()
        folders, files = storage.listdir(folder)
        pending.extend(f"{folder}/{name}" for name in folders)
        yield from (f"{folder}/{name}" for name in files)


def _delete_unreferenced(storage, names: list[str], cutoff, dry_run: bool) -> Iterator[str]:
    referenced = set(Asset.objects.filter(file__in=names).values_list("file", flat=True))
    referenced |= set(Asset.objects.filter(thumbnail__in=names).values_list("thumbnail", flat=True))
    for still_used in OTHER_STORED_FOLDERS.values():
        referenced |= still_used(names)
    for name in names:
        if name not in referenced and storage.get_modified_time(name) < cutoff:
            if not dry_run:
                storage.delete(name)
            yield name


def _size_of(fileobj: BinaryIO) -> int:
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


def _sha256_of(fileobj: BinaryIO) -> str:
    """Read in chunks, so a large upload is never held in memory; leaves it at position 0."""
    digest = hashlib.sha256()
    fileobj.seek(0)
    while chunk := fileobj.read(CHUNK_BYTES):
        digest.update(chunk)
    fileobj.seek(0)
    return digest.hexdigest()


def _refuse_oversize_early(size: int) -> None:
    """Bigger than any kind may be: refuse before looking up or decoding anything."""
    if size == 0:
        raise RejectedUpload("The file is empty.", "empty", 400)
    limit = max(settings.SIGHTLINE_MAX_UPLOAD_BYTES, settings.SIGHTLINE_MAX_VIDEO_BYTES)
    if size > limit:
        raise RejectedUpload(f"The file is {size} bytes; the largest accepted is {limit} bytes.", "too_large", 413)
