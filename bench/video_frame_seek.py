"""Finding one sampled frame of a long video again (face crops): seek vs decode from the start.

    .venv/bin/python bench/video_frame_seek.py [--minutes 5] [--keyframe-seconds 2]

Encodes a synthetic 640×360, 25 fps MPEG-4 video of the given length (a keyframe every
``--keyframe-seconds``, as cameras and phones write them), then times finding the frame at
10 %, 50 % and 90 % of it: ``media.services.video_frame_at`` (seek to the keyframe before it,
decode forward) against decoding from the start as ``iter_video_frames`` does. Checks both
give the same pixels. Prints a markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
FPS = 25


def encode(path: Path, seconds: int, keyframe_seconds: float) -> None:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.codec_context.gop_size = round(keyframe_seconds * FPS)
        for index in range(seconds * FPS):
            pixels = np.roll(background, index * 3, axis=1)  # every frame differs
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--keyframe-seconds", type=float, default=2)
    args = parser.parse_args()

    import django

    django.setup()
    from media import services

    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "long.mp4"
        seconds = round(args.minutes * 60)
        encode(path, seconds, args.keyframe_seconds)
        # The services read through the storage API; a stand-in asset opens this file.
        asset = SimpleNamespace(is_video=True)
        services_open = services.open_original
        services.open_original = lambda _asset: open(path, "rb")
        try:
            print(f"{seconds} s, 640×360, {FPS} fps, keyframe every {args.keyframe_seconds:g} s, "
                  f"{path.stat().st_size / 1e6:.0f} MB\n")
            print("| frame at | seek to keyframe + decode | decode from the start |")
            print("|---|---|---|")
            for share in (0.1, 0.5, 0.9):
                timestamp = round(seconds * share * FPS) / FPS
                started = time.perf_counter()
                sought = services.video_frame_at(asset, timestamp)
                seek_s = time.perf_counter() - started
                started = time.perf_counter()
                frames = services.iter_video_frames(asset, every_seconds=timestamp, max_frames=2)
                decoded = [frame for frame in frames][-1]
                full_s = time.perf_counter() - started
                assert np.array_equal(sought, decoded.image)
                print(f"| {timestamp:.0f} s | {seek_s * 1000:.0f} ms | {full_s * 1000:.0f} ms |")
        finally:
            services.open_original = services_open


if __name__ == "__main__":
    main()
