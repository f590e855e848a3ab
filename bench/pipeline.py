"""Pipeline throughput on this machine: the probe photos through a real rq worker.

    .venv/bin/python bench/pipeline.py [--faces-dir ../shared/data/faces] [--repeat 1]

Runs against its own embedded servers (``var/bench/``), enrols the gallery, then uploads every
probe photo and drains the ``inference`` queue with an in-process rq worker. Prints per-stage
median seconds (from the jobs' own timings) and photos per minute, as a markdown table for
docs/BENCHMARKS.md. Models are loaded before the clock starts (a worker keeps them loaded).
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

STAGES = ("uploading", "queued", "detecting", "enhancing", "recognizing")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces-dir", type=Path, default=REPO.parent / "shared" / "data" / "faces")
    parser.add_argument("--repeat", type=int, default=1, help="upload the probe folder this many times")
    args = parser.parse_args()
    if not (args.faces_dir / "probes").is_dir():
        sys.exit(f"no probes under {args.faces_dir}")

    from bench.servers import sightline_on_own_servers

    with sightline_on_own_servers():
        run(args)


def run(args) -> None:
    import django_rq
    import torch
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rq import SimpleWorker

    from recognition import inference, services
    from recognition.models import Face, Job, Stage, Subject

    User = get_user_model()
    User.objects.filter(email="bench@localhost").delete()
    owner = User.objects.create_user(email="bench@localhost", password="bench-only-password")
    queue = django_rq.get_queue("inference")
    queue.empty()
    worker = SimpleWorker([queue], connection=queue.connection)
    inference.face_engine()
    inference.image_tagger()

    def upload(path: Path, tag: str = ""):
        data = path.read_bytes() + tag.encode()  # a trailing tag makes repeats distinct files
        return services.upload(owner, SimpleUploadedFile(path.name, data))

    gallery = {}
    for person in sorted((args.faces_dir / "gallery").iterdir()):
        subject = Subject.objects.create(owner=owner, name=person.name)
        for photo in sorted(person.iterdir()):
            gallery[photo] = (subject, upload(photo).asset)
    worker.work(burst=True)
    for subject, asset in gallery.values():
        face = max(Face.objects.filter(asset=asset), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        face.subject, face.is_example = subject, True
        face.save()

    probes = sorted(p for p in (args.faces_dir / "probes").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    jobs = []
    started = time.perf_counter()
    for round_ in range(args.repeat):
        for photo in probes:
            jobs.append(upload(photo, tag=f"#{round_}" if round_ else "").job.pk)
    worker.work(burst=True)
    elapsed = time.perf_counter() - started

    finished = list(Job.objects.filter(pk__in=jobs))
    failed = [j for j in finished if j.stage != Stage.COMPLETED]
    medians = {
        stage: statistics.median(j.timings[stage]["seconds"] for j in finished if "seconds" in j.timings.get(stage, {}))
        for stage in STAGES
    }
    processing = statistics.median(
        sum(j.timings[s]["seconds"] for s in STAGES[1:]) for j in finished if j.stage == Stage.COMPLETED
    )
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {inference.face_engine().device}, python {platform.python_version()}")
    print(f"photos: {len(jobs)} probe photos ({len(failed)} failed), wall {elapsed:.1f} s, "
          f"{len(jobs) / elapsed * 60:.1f} photos/min\n")
    print("| stage | median seconds per photo |\n|---|---|")
    for stage in STAGES:
        print(f"| {stage} | {medians[stage]:.3f} |")
    print(f"| detecting+enhancing+recognizing | {processing:.3f} |")
    User.objects.filter(pk=owner.pk).delete()


if __name__ == "__main__":
    main()
