"""Read videos with PyAV, and probe an upload in a process of its own.

FFmpeg is native code: a hostile file can crash it, hang it or make it allocate without end.
The web process therefore never opens an uploaded video itself; ``media.validation`` runs

    python -m media.videoprobe VIDEO PREVIEW --max-seconds N --max-pixels P --memory-bytes M

as a short-lived child under an address-space cap and a wall-clock timeout, so a crash costs
one request, not the server. The rq workers, which decode stored videos in-process, use the
functions here too: one copy of the PyAV code.

This module imports no Django (the child reads no settings: limits arrive as arguments) and
nothing but PyAV and Pillow, not even numpy, which would nearly double the child's start-up
time (the added latency of every video upload).

The child's answer, on stdout, is one JSON object: the ``ProbedMedia`` fields (``preview``
aside) with the first frame written to PREVIEW as raw RGB bytes, row by row; or
``{"refused": {"message", "code", "status"}}``. Both exit 0; any other ending is a failure
the parent turns into a refusal of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

import av
from PIL import Image

from config.refusals import Refusal

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


class RejectedUpload(Refusal):
    """An upload we refuse: ``status`` (400, 413 or 415), ``code`` (a slug) and ``message``."""


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


def looks_like_video(head: bytes) -> bool:
    return any(head[offset : offset + len(magic)] == magic for offset, magic in VIDEO_SIGNATURES)


def probe_video(fileobj: BinaryIO, max_seconds: float, max_pixels: int | None = None) -> ProbedMedia:
    """Measure the video in ``fileobj`` and decode its first frame, or raise RejectedUpload.

    ``max_pixels`` bounds a frame's size, checked on the stream's declared size before any
    decoding and again on the decoded frame (every later frame is decoded by the workers, and
    the first is handed to the web process as raw RGB).
    In-process: the web process calls it only through the child (``media.validation``)."""
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    with open_video(fileobj) as container:
        stream = video_stream(container)
        _check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels)
        stream.thread_count = 1  # one frame to decode: decoder threads would only cost memory
        ext, content_type = _video_type(container.format.name, head)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else None
        duration = _duration(container, stream)
        if duration is not None and duration > max_seconds:
            raise _too_long(duration, max_seconds)
        first = first_frame(container, stream)
        _check_pixels(first.width, first.height, max_pixels)
        if duration is None:
            duration = _scan_duration(container, stream)
            if duration > max_seconds:
                raise _too_long(duration, max_seconds)
        frame_count = stream.frames or (round(duration * fps) if duration and fps else None)
    return ProbedMedia(
        "video", ext, content_type, first.width, first.height,
        duration=duration, fps=fps, frame_count=frame_count, preview=first,
    )


def open_video(fileobj: BinaryIO) -> av.container.InputContainer:
    """Open a video container we accept, or raise RejectedUpload (415 for what is no video)."""
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    try:
        container = av.open(fileobj, mode="r")
    except av.error.MemoryError:
        raise  # out of memory is no statement about the file
    except (av.FFmpegError, UnicodeDecodeError, ValueError):
        if looks_like_video(head):
            raise RejectedUpload("The video could not be read; the file is damaged.", "corrupt", 400) from None
        raise unsupported() from None
    if not set(container.format.name.split(",")) & VIDEO_CONTAINERS.keys():
        container.close()
        raise unsupported()
    return container


def unsupported() -> RejectedUpload:
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


def first_frame(container: av.container.InputContainer, stream) -> Image.Image:
    """The first decodable frame of ``stream`` as upright RGB, or RejectedUpload("no_frames")."""
    try:
        for frame in container.decode(stream):
            return frame_image(frame)
    except av.error.MemoryError:
        raise
    except av.FFmpegError:
        pass
    raise _no_frames()


def quarter_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise that make ``frame`` upright, as the container's display
    matrix says (phones record sideways)."""
    return round((frame.rotation or 0) / 90) % 4


_TRANSPOSITIONS = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}


def frame_image(frame: av.VideoFrame) -> Image.Image:
    """``frame`` as an upright RGB image."""
    turns = quarter_turns(frame)
    image = frame.to_image()
    return image.transpose(_TRANSPOSITIONS[turns]) if turns else image


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
    except av.error.MemoryError:
        raise
    except av.FFmpegError:
        pass  # a damaged tail: the duration up to it is what can be played
    return end


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise RejectedUpload(
            f"The video's frames are {width}×{height} pixels; the most accepted is {max_pixels} pixels a frame.",
            "too_many_pixels", 400,
        )


def _too_long(duration: float, max_seconds: float) -> RejectedUpload:
    return RejectedUpload(
        f"The video lasts {duration:.1f} s; the longest accepted is {max_seconds:g} s.", "too_long", 400
    )


# --- The child process ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m media.videoprobe", description=__doc__.split("\n")[0])
    parser.add_argument("video", help="the file to probe")
    parser.add_argument("preview", help="where to write the first frame, as raw RGB bytes")
    parser.add_argument("--max-seconds", type=float, required=True, help="refuse longer videos (too_long)")
    parser.add_argument("--max-pixels", type=int, default=None, help="refuse bigger frames (too_many_pixels)")
    parser.add_argument("--memory-bytes", type=int, default=0, help="address-space cap; 0: none")
    args = parser.parse_args(argv)
    _limit_resources(args.memory_bytes)
    try:
        with open(args.video, "rb") as fileobj:
            probed = probe_video(fileobj, args.max_seconds, args.max_pixels)
    except RejectedUpload as refused:
        return _answer({"refused": {"message": refused.message, "code": refused.code, "status": refused.status}})
    except MemoryError:  # Python's or FFmpeg's: the allocation that failed is freed by now
        mebibytes = args.memory_bytes // 2**20
        return _answer({"refused": {
            "message": f"The video could not be read: opening it needs more than {mebibytes} MiB of memory.",
            "code": "corrupt",
            "status": 400,
        }})
    with open(args.preview, "wb") as preview:
        preview.write(probed.preview.tobytes())
    return _answer({name: value for name, value in vars(probed).items() if name != "preview"})


def _limit_resources(memory_bytes: int) -> None:
    """Cap this process's address space (set here, not in the parent's preexec_fn, which is
    unsafe in a threaded web server); a crash writes no core file."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _answer(message: dict) -> int:
    json.dump(message, sys.stdout)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    # os._exit: the answer is flushed, and skipping the interpreter's teardown saves ~15 ms.
    os._exit(main())
