"""Video: real-time factor of the pipeline against `face_recognition`, and the worker's peak memory.

    .venv/bin/python bench/video.py [--minutes 10] [--skip-long]

For each video (the two shared clips and a generated 720p clip of ``--minutes``), in one run:

- Sightline: a fresh process uploads the video and runs its job through the real pipeline with
  an in-process rq worker (decode, detect, align, embed, track, match, cluster, tag, crops,
  rows); processing time is the job's detecting + enhancing + recognizing seconds; peak RSS is
  the process's (getrusage), models included.
- `face_recognition` at the same 2 frames a second: dlib's HOG detector with one upsampling,
  5-point shapes and the ResNet descriptor (what face_recognition.face_encodings does) on the
  same sampled frames, decode included, in a fresh process too.

Real-time factor = video duration / processing seconds (higher is faster). The generated clip
shows the shared photos one after another on a 1280×720 canvas, drifting slowly, each for 10 s,
encoded with PyAV (H.264), so there are faces to find all along. Runs on its own embedded
servers (var/bench/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

FPS = 2.0


def generate_clip(path: Path, minutes: float, faces: Path) -> None:
    import av
    import numpy as np
    from PIL import Image

    photos = sorted(p for p in (faces / "gallery").rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    photos += sorted(p for p in (faces / "probes").glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    width, height, rate = 1280, 720, 10
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        total = int(minutes * 60 * rate)
        per_photo = 10 * rate
        picture = None
        for n in range(total):
            if n % per_photo == 0:
                photo = Image.open(photos[(n // per_photo) % len(photos)]).convert("RGB")
                photo.thumbnail((width - 160, height - 90))
                picture = photo
            canvas = Image.new("RGB", (width, height), (30, 30, 36))
            drift = (n % per_photo) / per_photo
            canvas.paste(picture, (int(20 + 120 * drift), int(10 + 60 * drift)))
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def run_sightline(path: str) -> dict:
    """In this (fresh) process: upload, process, report seconds and peak memory."""
    from bench.servers import sightline_on_own_servers

    with sightline_on_own_servers():
        import django_rq
        from django.contrib.auth import get_user_model
        from django.core.files import File
        from rq import SimpleWorker

        from recognition import inference, services
        from recognition.models import Appearance, Face, Job

        inference.face_engine(), inference.image_tagger()  # a worker has them loaded already
        user = get_user_model().objects.create_user(email=f"video-{time.time_ns()}@bench", password="x" * 20)
        with open(path, "rb") as handle:
            outcome = services.upload(user, File(handle, name=Path(path).name), Path(path).name)
        queue = django_rq.get_queue("inference")
        SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=False)
        job = Job.objects.get(pk=outcome.job.pk)
        seconds = sum(job.timings[s]["seconds"] for s in ("detecting", "enhancing", "recognizing"))
        return {
            "stage": job.stage, "error": job.error, "seconds": seconds, "duration": outcome.asset.duration_seconds,
            "stages": {s: job.timings[s]["seconds"] for s in ("detecting", "enhancing", "recognizing")},
            "faces": Face.objects.filter(asset=outcome.asset).count(),
            "appearances": Appearance.objects.filter(asset=outcome.asset).count(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

def run_dlib(path: str) -> dict:
    import av
    import numpy as np

    from bench.shared_faces import DlibPipeline

    pipeline = DlibPipeline()
    started = time.perf_counter()
    faces, frames, next_time, duration = 0, 0, 0.0, 0.0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = None
        for frame in container.decode(stream):
            start = frame.time if start is None else start
            duration = frame.time - start
            if duration + 1e-6 < next_time:
                continue
            image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            faces += len(pipeline.encode(image, pipeline.shapes(image)))
            frames += 1
            while next_time <= duration + 1e-6:
                next_time += 1 / FPS
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "frames": frames, "faces": faces,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def in_fresh_process(kind: str, path: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--one", kind, str(path)], capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{\"result\"")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{kind} on {path.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])["result"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--skip-long", action="store_true", help="only the two shared clips")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, path = args.one
        result = run_sightline(path) if kind == "sightline" else run_dlib(path)
        print(json.dumps({"result": result}))
        return

    from bench.shared_faces import faces_dir

    faces = faces_dir()
    videos = [faces / "videos" / "short_hamilton_clip.mp4", faces / "videos" / "facenet_video.mp4"]
    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_long:
            long_clip = Path(scratch) / f"generated-{args.minutes:g}min-720p.mp4"
            started = time.perf_counter()
            generate_clip(long_clip, args.minutes, faces)
            print(f"(generated {long_clip.name} in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
            videos.append(long_clip)
        print(f"{platform.node()} · {os.cpu_count()} cores · {time.strftime('%Y-%m-%d')} · {FPS:g} frames/s analysed\n")
        print("| video | duration | Sightline | real-time factor | detecting / enhancing / recognizing | faces → "
              "appearances | peak RSS | face_recognition | real-time factor | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for video in videos:
            ours = in_fresh_process("sightline", video)
            if ours["stage"] != "completed":
                raise SystemExit(f"{video.name}: {ours['stage']} {ours['error']}")
            theirs = in_fresh_process("dlib", video)
            duration = ours["duration"]
            ours_rtf, theirs_rtf = duration / ours["seconds"], duration / theirs["seconds"]
            stages = " / ".join(f"{ours['stages'][s]:.1f}" for s in ("detecting", "enhancing", "recognizing"))
            print(f"| {video.name} | {duration:.1f} s | {ours['seconds']:.1f} s | {ours_rtf:.2f}× | {stages} s | "
                  f"{ours['faces']} → {ours['appearances']} | {ours['peak_rss_mb']:.0f} MB | {theirs['seconds']:.1f} s "
                  f"| {theirs_rtf:.2f}× | {ours_rtf / theirs_rtf:.2f} |", flush=True)


if __name__ == "__main__":
    main()
