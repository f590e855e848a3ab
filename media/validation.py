"""Validate uploads by their content, never by their name or the client's content type.

Images are decoded with Pillow restricted to the formats we accept; videos are opened with
PyAV and accepted only when a video container demuxer recognises them and a frame decodes.
Every refusal is a ``RejectedUpload`` carrying an HTTP status, a short code and a sentence.

Colour conversions (one rule everywhere, so stored thumbnails and the pipeline's input
agree): EXIF orientation is applied; transparency is composited on white (a transparent
background reads as white, as browsers show it); palette, grayscale, CMYK and other modes
become RGB; 16-bit and 32-bit integer images are scaled down to 8 bits; float images are
taken as 0..1 when their maximum is at most 1, else clipped to 0..255; animations give their
first frame. Video frames are turned upright by the container's rotation (display matrix).
"""

from __future__ import annotations

import os
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import BinaryIO

import av
import numpy as np
from django.conf import settings
from PIL import Image, ImageOps

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

# FFmpeg demuxer name → (extension, content type). Only video containers: FFmpeg also
# demuxes text ("tty"), images ("*_pipe") and much else we must not call a video.
VIDEO_CONTAINERS = {
    "mp4": ("mp4", "video/mp4"),
    "mov": ("mov", "video/quicktime"),
    "matroska": ("mkv", "video/x-matroska"),
    "webm": ("webm", "video/webm"),
    "avi": ("avi", "video/x-msvideo"),
    "mpegts": ("ts", "video/mp2t"),
    "mpeg": ("mpg", "video/mpeg"),
    "flv": ("flv", "video/x-flv"),
    "ogg": ("ogv", "video/ogg"),
    "asf": ("wmv", "video/x-ms-asf"),
}

VIDEO_SIGNATURES = (
    (4, b"ftyp"),  # MP4, MOV
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"OggS"),
    (0, b"FLV"),
    (8, b"AVI "),
)

HEAD_BYTES = 64
MAX_NAME_LENGTH = 200
FALLBACK_NAME = "upload"


class RejectedUpload(Exception):
    """An upload we refuse: ``status`` (400, 413 or 415), ``code`` (a slug) and ``message``."""

    def __init__(self, message: str, code: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class ProbedMedia:
    """What the content turned out to be. Dimensions are as displayed (after EXIF orientation)."""

    kind: str  # "image" or "video"
    ext: str  # our extension for the detected format, without the dot
    content_type: str
    width: int
    height: int
    duration: float | None = None  # videos only, from here down
    fps: float | None = None
    frame_count: int | None = None
    # The first frame as an RGB image, for thumbnails and for decode-without-storing.
    preview: Image.Image | None = field(default=None, repr=False, compare=False)


def sanitize_filename(name: str | None) -> str:
    """A display name only (never a path): the last path component, no control or
    formatting characters, no surrounding dots or spaces, at most 200 characters."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").split("/")[-1]
    # Category C: control (NUL included), format (bidi overrides), surrogates, private, unassigned.
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip(" .")
    if len(name) > MAX_NAME_LENGTH:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: MAX_NAME_LENGTH - len(ext)] + ext
    return name or FALLBACK_NAME


def probe_file(fileobj: BinaryIO, size: int) -> ProbedMedia:
    """Identify and fully validate ``fileobj`` (``size`` bytes long) or raise RejectedUpload."""
    if size <= 0:
        raise RejectedUpload("The file is empty.", "empty", 400)
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    if _looks_like_image(head):
        _check_size(size, settings.SIGHTLINE_MAX_UPLOAD_BYTES, "image")
        return _probe_image(fileobj)
    _check_size(size, settings.SIGHTLINE_MAX_VIDEO_BYTES, "video")
    return _probe_video(fileobj, head)


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


def _looks_like_image(head: bytes) -> bool:
    is_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return is_webp or head.startswith(IMAGE_SIGNATURES)


def _looks_like_video(head: bytes) -> bool:
    return any(head[offset : offset + len(magic)] == magic for offset, magic in VIDEO_SIGNATURES)


def _check_size(size: int, limit: int, kind: str) -> None:
    if size > limit:
        raise RejectedUpload(
            f"The {kind} is {size} bytes; the largest accepted is {limit} bytes.", "too_large", 413
        )


def _open_image(fileobj: BinaryIO) -> Image.Image:
    """Open with our formats only, refusing too many pixels before any pixel is decoded,
    then decode fully so a truncated file is caught here and not halfway through the pipeline."""
    limit = settings.SIGHTLINE_MAX_IMAGE_PIXELS
    fileobj.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limit  # the same value on every call, so threads agree
            image = Image.open(fileobj, formats=IMAGE_OPENERS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_many_pixels(limit) from None
    except (Image.UnidentifiedImageError, OSError, ValueError, EOFError):
        raise RejectedUpload("The image could not be read; the file is damaged.", "corrupt", 400) from None
    width, height = image.size
    if width * height > limit:
        image.close()
        raise _too_many_pixels(limit)
    if width == 0 or height == 0:
        image.close()
        raise RejectedUpload("The image has no pixels.", "corrupt", 400)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        image.close()
        raise RejectedUpload(f"The image is damaged or truncated ({error}).", "corrupt", 400) from None
    return image


def _too_many_pixels(limit: int) -> RejectedUpload:
    return RejectedUpload(f"The image has more than {limit} pixels.", "too_many_pixels", 400)


def _probe_image(fileobj: BinaryIO) -> ProbedMedia:
    with _open_image(fileobj) as image:
        ext, content_type = IMAGE_FORMATS[image.format]
        rgb = to_rgb(image)
    return ProbedMedia("image", ext, content_type, rgb.width, rgb.height, preview=rgb)


def open_video(fileobj: BinaryIO) -> av.container.InputContainer:
    """Open a video container we accept, or raise RejectedUpload (415 for what is no video)."""
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    try:
        container = av.open(fileobj, mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError):
        if _looks_like_video(head):
            raise RejectedUpload("The video could not be read; the file is damaged.", "corrupt", 400) from None
        raise _unsupported() from None
    if not set(container.format.name.split(",")) & VIDEO_CONTAINERS.keys():
        container.close()
        raise _unsupported()
    return container


def _unsupported() -> RejectedUpload:
    return RejectedUpload(
        "This file type is not supported: upload a JPEG, PNG, WebP, GIF, BMP or TIFF image, "
        "or an MP4, MOV, WebM or MKV video.",
        "unsupported_type",
        415,
    )


def _no_frames() -> RejectedUpload:
    return RejectedUpload("The file has no video frame that can be decoded.", "no_frames", 400)


def video_stream(container: av.container.InputContainer):
    """The first video stream FFmpeg has a decoder for, or RejectedUpload("no_frames").

    A stream without a decoder has no codec context, and decoding it crashes PyAV.
    """
    for stream in container.streams.video:
        if stream.codec_context is not None:
            return stream
    raise _no_frames()


def _probe_video(fileobj: BinaryIO, head: bytes) -> ProbedMedia:
    with open_video(fileobj) as container:
        stream = video_stream(container)
        ext, content_type = _video_type(container.format.name, head)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else None
        duration = _duration(container, stream)
        if duration is not None and duration > settings.SIGHTLINE_MAX_VIDEO_SECONDS:
            raise _too_long(duration)
        first = first_frame(container, stream)
        if duration is None:
            duration = _scan_duration(container, stream)
            if duration > settings.SIGHTLINE_MAX_VIDEO_SECONDS:
                raise _too_long(duration)
        frame_count = stream.frames or (round(duration * fps) if duration and fps else None)
    return ProbedMedia(
        "video", ext, content_type, first.width, first.height,
        duration=duration, fps=fps, frame_count=frame_count, preview=first,
    )


def first_frame(container: av.container.InputContainer, stream) -> Image.Image:
    """The first decodable frame of ``stream`` as upright RGB, or RejectedUpload("no_frames")."""
    try:
        for frame in container.decode(stream):
            return Image.fromarray(frame_pixels(frame))
    except av.FFmpegError:
        pass
    raise _no_frames()


def frame_pixels(frame: av.VideoFrame) -> np.ndarray:
    """H×W×3 uint8 RGB, turned as the container's display matrix says (phones record sideways)."""
    pixels = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(pixels, quarter_turns)) if quarter_turns else pixels


def _video_type(demuxer: str, head: bytes) -> tuple[str, str]:
    names = demuxer.split(",")
    if "mov" in names:  # one FFmpeg demuxer for MP4 and QuickTime: the ftyp brand tells them apart
        return VIDEO_CONTAINERS["mov" if head[8:12] == b"qt  " else "mp4"]
    if "matroska" in names:
        return VIDEO_CONTAINERS["webm" if b"webm" in head else "matroska"]
    return next(VIDEO_CONTAINERS[name] for name in names if name in VIDEO_CONTAINERS)


def _duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _scan_duration(container, stream) -> float:
    """The last packet's end time, for containers that do not declare a duration."""
    end = 0.0
    try:
        container.seek(0)
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except av.FFmpegError:
        pass  # a damaged tail: the duration up to it is what can be played
    return end


def _too_long(duration: float) -> RejectedUpload:
    limit = settings.SIGHTLINE_MAX_VIDEO_SECONDS
    return RejectedUpload(
        f"The video lasts {duration:.1f} s; the longest accepted is {limit} s.", "too_long", 400
    )
