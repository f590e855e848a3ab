"""Validate uploads by their content, never by their name or the client's content type.

Images are decoded with Pillow restricted to the formats we accept; videos are opened with
PyAV and accepted only when a video container demuxer recognises them and a frame decodes.
Every refusal is a ``RejectedUpload`` carrying an HTTP status, a short code and a sentence.

Videos are probed in a child process (``media.videoprobe``) with an address-space cap and a
timeout, because FFmpeg is native code a hostile file can crash, hang or inflate: that costs
the child, never the web process. A child that dies by a signal, runs out of time or memory,
exits with an error or answers nonsense gives a refusal with code ``corrupt`` (400) and a
message saying which, and a warning in the log.

Colour conversions (one rule everywhere, so stored thumbnails and the pipeline's input
agree): EXIF orientation is applied; transparency is composited on white (a transparent
background reads as white, as browsers show it); palette, grayscale, CMYK and other modes
become RGB; 16-bit and 32-bit integer images are scaled down to 8 bits; float images are
taken as 0..1 when their maximum is at most 1, else clipped to 0..255; animations give their
first frame. Video frames are turned upright by the container's rotation (display matrix).
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import unicodedata
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from PIL import ExifTags, Image, ImageOps

from media.videoprobe import HEAD_BYTES, VIDEO_CONTAINERS, ProbedMedia, RejectedUpload

__all__ = [
    "ProbedMedia",
    "RejectedUpload",
    "decode_image",
    "probe_file",
    "probe_timeout",
    "probe_video_in_child",
    "sanitize_filename",
    "to_rgb",
]

logger = logging.getLogger(__name__)

IMAGE_FORMATS = {
    # Pillow format: (extension, content type)
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "MPO": ("jpg", "image/jpeg"),  # cameras' multi-picture JPEGs: Pillow's JPEG opener returns them
}
IMAGE_OPENERS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]

IMAGE_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)

MAX_NAME_LENGTH = 200
FALLBACK_NAME = "upload"

# The video probe's child process. Address space, measured: 0.24 GiB for a 640×360 clip,
# 0.27 GiB for 1080p, 0.75 GiB for an 8K (7680×4320) H.264 video. 2 GiB leaves room for what
# we accept and stops a file that makes the decoder allocate without end.
VIDEO_PROBE_MEMORY_BYTES = 2 * 2**30
# Seconds: plenty for opening a video and decoding one frame (a fraction of a second) on a
# loaded server, plus a demuxing pace of 10 MiB/s for containers whose every packet must be
# read to learn the duration.
VIDEO_PROBE_BASE_SECONDS = 60
VIDEO_PROBE_BYTES_PER_SECOND = 10 * 2**20
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Should a library in the child start a thread per core: each reserves a stack and a malloc
# arena (64 MiB) of address space, which on a many-core server would eat into the cap.
CHILD_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
CHILD_ANSWER_LIMIT = 64 * 1024  # bytes of the child's stdout we read; its answer is far shorter
CHILD_LOG_LIMIT = 2000  # bytes of the child's stderr we log


def sanitize_filename(name: str | None) -> str:
    """A display name only (never a path): the last path component, no control or
    formatting characters, no surrounding dots or spaces, at most 200 characters."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").split("/")[-1]
    # Browsers send a double quote in a form's file name as %22 (HTML's multipart/form-data
    # encoding); the person named the file with a quote, so the quote is what they see.
    name = name.replace("%22", '"')
    # Category C: control (NUL included), format (bidi overrides), surrogates, private, unassigned.
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip(" .")
    if len(name) > MAX_NAME_LENGTH:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: MAX_NAME_LENGTH - len(ext)] + ext
    return name or FALLBACK_NAME


def probe_file(fileobj: BinaryIO, size: int, preview_side: int | None = None) -> ProbedMedia:
    """Identify and fully validate ``fileobj`` (``size`` bytes long) or raise RejectedUpload.

    ``preview_side``: a photo's preview is only needed this big (a thumbnail). A JPEG is then
    decoded at 1/2 to 1/8 scale by its own decoder, which still reads and checks every byte
    (a file cut short is refused the same), at a fraction of the cost: 35 ms against 163 ms,
    and 0.6 MB against 36 MB, for a 12-megapixel photo. Dimensions stay those of the file.
    """
    if size <= 0:
        raise RejectedUpload("The file is empty.", "empty", 400)
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    if _looks_like_image(head):
        _check_size(size, settings.SIGHTLINE_MAX_UPLOAD_BYTES, "image")
        return _probe_image(fileobj, preview_side)
    _check_size(size, settings.SIGHTLINE_MAX_VIDEO_BYTES, "video")
    return probe_video_in_child(fileobj, settings.SIGHTLINE_MAX_VIDEO_SECONDS, timeout=probe_timeout(size),
                                max_pixels=settings.SIGHTLINE_MAX_VIDEO_PIXELS)


def decode_image(fileobj: BinaryIO) -> Image.Image:
    """Decode an image file we accept into an 8-bit RGB PIL image (see the module's rules)."""
    with _open_image(fileobj) as image:
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` upright and as 8-bit RGB, by the module's conversion rules."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # unreadable EXIF: show the pixels as stored rather than refuse the photo
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = Image.fromarray(_to_uint8(np.asarray(image)), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype.kind == "f":
        scale = 255.0 if np.nanmax(pixels, initial=0.0) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(pixels) * scale, 0, 255).astype(np.uint8)
    pixels = pixels.astype(np.int64)
    if pixels.max(initial=0) > 255:  # 16-bit range (32-bit "I" images come from 16-bit sources)
        pixels = pixels // 257
    return np.clip(pixels, 0, 255).astype(np.uint8)


def probe_timeout(size: int) -> float:
    """Seconds the video probe may take for a file of ``size`` bytes."""
    return VIDEO_PROBE_BASE_SECONDS + size / VIDEO_PROBE_BYTES_PER_SECOND


def probe_video_in_child(
    fileobj: BinaryIO,
    max_seconds: float,
    *,
    timeout: float = VIDEO_PROBE_BASE_SECONDS,
    memory_bytes: int = VIDEO_PROBE_MEMORY_BYTES,
    max_pixels: int | None = None,
) -> ProbedMedia:
    """``media.videoprobe.probe_video`` run in a child process under ``memory_bytes`` of
    address space and ``timeout`` seconds; raises RejectedUpload for the file's faults and
    for the child's. Every temporary file is gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="sightline-probe-") as workdir:
        video_path = _path_of(fileobj) or _copy_to(fileobj, os.path.join(workdir, "video"))
        preview_path = os.path.join(workdir, "preview.rgb")
        # Files, not pipes: the parent reads only as much of the child's output as it trusts.
        stdout_path, stderr_path = os.path.join(workdir, "stdout"), os.path.join(workdir, "stderr")
        with open(stdout_path, "w+b") as stdout, open(stderr_path, "w+b") as stderr:
            command = [
                sys.executable, "-m", "media.videoprobe", video_path, preview_path,
                "--max-seconds", str(max_seconds), "--memory-bytes", str(memory_bytes),
                *(["--max-pixels", str(max_pixels)] if max_pixels is not None else []),
            ]
            child = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env={**os.environ, **CHILD_ENVIRONMENT},
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            )
            try:
                returncode = _wait(child, timeout)
            except subprocess.TimeoutExpired:
                logger.warning("Video probe killed after %.3g s: %s", timeout, _tail(stderr))
                raise _unreadable(f"opening it took longer than {timeout:.3g} s") from None
            finally:
                if child.poll() is None:  # timed out, or this thread was interrupted: no orphans
                    child.kill()
                    child.wait()
            if returncode != 0:
                logger.warning("Video probe %s: %s", _ending(returncode), _tail(stderr))
                raise _unreadable("the decoder crashed" if returncode < 0 else "the decoder failed")
            stdout.seek(0)
            answer = stdout.read(CHILD_ANSWER_LIMIT)
        try:
            return _probed_from_child(answer, preview_path)
        except RejectedUpload:
            raise
        except Exception as error:  # malformed JSON, missing or mistyped fields, a short preview…
            logger.warning("Video probe answered nonsense (%s): %r", error, answer[:500])
            raise _unreadable("the decoder gave no usable answer") from None


def _wait(child: subprocess.Popen, timeout: float) -> int:
    """``child.wait(timeout)``, woken by the child's exit where Linux offers a pidfd: Popen.wait
    polls with sleeps of up to 50 ms, which would add to every video upload."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):  # not Linux 5.3 or later
        return child.wait(timeout)
    try:
        poller = select.poll()  # not select.select: a busy server's descriptors pass 1024
        poller.register(pidfd, select.POLLIN)
        exited = poller.poll(timeout * 1000)
    finally:
        os.close(pidfd)
    if not exited:
        raise subprocess.TimeoutExpired(child.args, timeout)
    return child.wait()


def _path_of(fileobj: BinaryIO) -> str | None:
    """A path the child can open for ``fileobj``'s bytes: a temporary upload's, or an open
    file's name when it is verifiably that very file (an upload's name is the client's)."""
    if hasattr(fileobj, "temporary_file_path"):
        return fileobj.temporary_file_path()
    for candidate in (fileobj, getattr(fileobj, "file", None)):  # a django File wraps its file
        name = getattr(candidate, "name", None)
        try:
            if isinstance(name, str) and os.path.samestat(os.fstat(candidate.fileno()), os.stat(name)):
                return os.path.abspath(name)
        except (AttributeError, OSError, ValueError):  # no descriptor (BytesIO), closed, no such file
            continue
    return None


def _copy_to(fileobj: BinaryIO, path: str) -> str:
    fileobj.seek(0)
    with open(path, "wb") as copy:
        shutil.copyfileobj(fileobj, copy, 1024 * 1024)
    fileobj.seek(0)
    return path


def _probed_from_child(answer: bytes, preview_path: str) -> ProbedMedia:
    """The child's answer as a ProbedMedia, or its refusal raised; any other exception when the
    answer is not what a sane child writes."""
    fields = json.loads(answer)
    if "refused" in fields:
        refused = fields["refused"]
        status = int(refused["status"])
        if status not in (400, 413, 415):
            raise ValueError(f"status {status}")
        raise RejectedUpload(str(refused["message"]), str(refused["code"]), status)
    if fields["kind"] != "video" or (fields["ext"], fields["content_type"]) not in VIDEO_CONTAINERS.values():
        raise ValueError("not a video type of ours")
    width, height = int(fields["width"]), int(fields["height"])
    if width <= 0 or height <= 0:
        raise ValueError(f"{width}x{height} pixels")
    with open(preview_path, "rb") as preview_file:
        pixels = preview_file.read(width * height * 3 + 1)
    if len(pixels) != width * height * 3:
        raise ValueError(f"{len(pixels)} preview bytes for {width}x{height}")
    return ProbedMedia(
        "video", fields["ext"], fields["content_type"], width, height,
        duration=_optional(float, fields["duration"]),
        fps=_optional(float, fields["fps"]),
        frame_count=_optional(int, fields["frame_count"]),
        preview=Image.frombytes("RGB", (width, height), pixels),
    )


def _optional(kind, value):
    return None if value is None else kind(value)


def _unreadable(what_happened: str) -> RejectedUpload:
    return RejectedUpload(f"The video could not be read: {what_happened}.", "corrupt", 400)


def _ending(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _tail(output: BinaryIO) -> str:
    output.seek(0, os.SEEK_END)
    output.seek(max(0, output.tell() - CHILD_LOG_LIMIT))
    return output.read().decode("utf-8", "replace").strip() or "(no output)"


def _looks_like_image(head: bytes) -> bool:
    is_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return is_webp or head.startswith(IMAGE_SIGNATURES)


def _check_size(size: int, limit: int, kind: str) -> None:
    if size > limit:
        raise RejectedUpload(
            f"The {kind} is {_bytes(size)}; the largest accepted is {_bytes(limit)}.", "too_large", 413
        )


def _open_image(fileobj: BinaryIO) -> Image.Image:
    """Open with our formats only, refusing too many pixels before any pixel is decoded,
    then decode fully so a truncated file is caught here and not halfway through the pipeline."""
    image = _opened_image(fileobj)
    _load(image)
    return image


def _opened_image(fileobj: BinaryIO) -> Image.Image:
    """The image's header read and checked (format, pixel count), no pixel decoded yet."""
    limit = settings.SIGHTLINE_MAX_IMAGE_PIXELS
    fileobj.seek(0)
    try:
        with warnings.catch_warnings():
            # Up to twice the limit Pillow only warns, and the header is all it has read: the
            # size check below refuses it, saying its dimensions.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limit  # the same value on every call, so threads agree
            image = Image.open(fileobj, formats=IMAGE_OPENERS)
    except Image.DecompressionBombError as bomb:
        # Pillow says how many pixels the header claims ("Image size (900000000 pixels) exceeds").
        claimed = re.search(r"\((\d+) pixels\)", str(bomb))
        raise _too_many_pixels(limit, int(claimed.group(1)) if claimed else None) from None
    except (Image.UnidentifiedImageError, OSError, ValueError, EOFError):
        raise RejectedUpload("The image could not be read; the file is damaged.", "corrupt", 400) from None
    width, height = image.size
    if width * height > limit:
        image.close()
        raise _too_many_pixels(limit, width * height, f" ({width}×{height})")
    if width == 0 or height == 0:
        image.close()
        raise RejectedUpload("The image has no pixels.", "corrupt", 400)
    return image


def _load(image: Image.Image) -> None:
    """Decode the pixels to the end of the file, or refuse it as damaged."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError):
        image.close()
        # Pillow's own words ("6 bytes not processed") mean nothing to the person uploading.
        raise RejectedUpload("The image is damaged or cut short: it could not be read to the end.", "corrupt",
                             400) from None


def _bytes(size: int) -> str:
    return filesizeformat(size).replace("\xa0", " ")  # "12.3 MB"; a plain space in API messages


def _too_many_pixels(limit: int, pixels: int | None = None, dimensions: str = "") -> RejectedUpload:
    size = f"is {pixels / 1e6:.1f} megapixels{dimensions}" if pixels else "has too many pixels"
    return RejectedUpload(f"The image {size}; the largest accepted is {limit / 1e6:.1f} megapixels.",
                          "too_many_pixels", 400)


def _probe_image(fileobj: BinaryIO, preview_side: int | None = None) -> ProbedMedia:
    with _opened_image(fileobj) as image:
        width, height = image.size
        if preview_side:
            image.draft(image.mode, (preview_side, preview_side))  # JPEG only; others ignore it
        stored = image.size
        _load(image)
        ext, content_type = IMAGE_FORMATS[image.format]
        rgb = to_rgb(image)
        if _turned_sideways(rgb.size, stored, image):
            width, height = height, width
    return ProbedMedia("image", ext, content_type, width, height, preview=rgb)


def _turned_sideways(upright: tuple[int, int], stored: tuple[int, int], image: Image.Image) -> bool:
    """Whether ``to_rgb`` turned the image a quarter (its EXIF orientation), from the pixels it
    gave back; a square has no telling sides, and its orientation tag says."""
    if stored[0] != stored[1]:
        return upright != stored
    try:
        return image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
    except Exception:  # unreadable EXIF: to_rgb left it as stored
        return False


