"""What probing an uploaded video in a child process costs, against probing it in process.

    .venv/bin/python bench/video_probe.py [--faces-dir ../shared/data/faces] [--repeat 10]

For each shared video: the median wall time of ``media.videoprobe.probe_video`` in this process
and of ``media.validation.probe_video_in_child`` (a capped child, what the web process does),
after one warm-up each. Prints a markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def median_ms(probe, path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat + 1):  # the first is a warm-up (page cache, imports)
        with path.open("rb") as handle:
            started = time.perf_counter()
            probe(handle)
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces-dir", type=Path, default=REPO.parent / "shared" / "data" / "faces")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    import django

    django.setup()
    from media.validation import probe_video_in_child
    from media.videoprobe import probe_video

    videos = sorted((args.faces_dir / "videos").glob("*.mp4"))
    if not videos:
        sys.exit(f"no videos under {args.faces_dir / 'videos'}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, median of {args.repeat}\n")
    print("| video | size | in process | in a child | added |")
    print("|---|---|---|---|---|")
    for video in videos:
        in_process = median_ms(lambda f: probe_video(f, max_seconds=3600), video, args.repeat)
        in_child = median_ms(lambda f: probe_video_in_child(f, max_seconds=3600), video, args.repeat)
        size_mb = video.stat().st_size / 1e6
        print(f"| `{video.name}` | {size_mb:.1f} MB | {in_process:.0f} ms | {in_child:.0f} ms | "
              f"{in_child - in_process:.0f} ms |")


if __name__ == "__main__":
    main()
