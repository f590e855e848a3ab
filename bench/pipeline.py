"""Pipeline throughput against face_recognition, in one run, on two sets of photos.

    .venv/bin/python bench/pipeline.py [--rounds 2] [--batches 1,8] [--small-copies 4] [--workers 1x2,2x1]
                                       [--tree LABEL=PATH ...]

Sets: the shared gallery and probe photos (``../shared/data/faces``), and "many small
photos": each of them scaled to at most 400 px, mirrored and shifted into ``--small-copies``
distinct pictures (what a phone's thumbnails or a web scrape look like).

Contenders, taking turns (each one's best round is kept, so a busy spell on a shared machine
slows whoever runs in it, not one side only):
- ``face_recognition``: its pipeline called on dlib (HOG with one upsampling, 5 landmarks,
  ResNet descriptor), one process reading each file;
- Sightline with ``SIGHTLINE_PHOTO_BATCH`` = each of ``--batches``: every photo uploaded
  through ``services.upload`` (validation, hashing, thumbnail, row, queue), then the
  ``inference`` queue drained by a real rq worker in this process; timed from the first
  upload to the last job completed. Each round uploads as a new user (no deduplication).
- Sightline with ``--workers`` NxT: N ``manage.py rqworker inference`` processes (what ``serve``
  starts with ``SIGHTLINE_INFERENCE_WORKERS``) with T torch threads each (plain N: the cores
  split between them), started and loaded before the clock starts, at the largest of
  ``--batches``; timed from the first upload to the last job completed, the workers working
  while the uploads go on.
- with ``--tree LABEL=PATH``, each ``--workers`` contender again with its workers run from another
  checkout of the code (a ``git worktree`` of an earlier commit, say): the same uploads, servers
  and database, so a change is measured against the code before it in one run.

Runs against its own embedded servers (``var/bench/``). The worker's torch threads are what
``manage.py serve`` gives an inference worker on this machine (SIGHTLINE_TORCH_THREADS
overrides). Models are loaded before the clock starts (a worker keeps them loaded). Prints
markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
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
SMALL_SIDE = 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="turns per contender (best kept)")
    parser.add_argument("--batches", default="1,8", help="SIGHTLINE_PHOTO_BATCH values to compare")
    parser.add_argument("--small-copies", type=int, default=4, help="small pictures made from each photo")
    parser.add_argument("--workers", default="", help="also: worker processes, as N or NxT (T torch threads each; "
                        "@B: batch B instead of the largest of --batches), comma-separated")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="also run each --workers contender's workers from this checkout")
    args = parser.parse_args()
    args.trees = {label: Path(path).resolve() for label, _, path in (t.partition("=") for t in args.tree)}

    from bench.servers import sightline_on_own_servers

    with sightline_on_own_servers():
        run(args)


def photo_sets(copies: int) -> dict[str, list[tuple[str, bytes]]]:
    from PIL import Image, ImageOps

    from bench.shared_faces import faces_dir, gallery_photos, probe_photos

    root = faces_dir()
    shared = [(photo.path.name, photo.path.read_bytes()) for photo in gallery_photos(root) + probe_photos(root)]
    small = []
    for name, data in shared:
        with Image.open(io.BytesIO(data)) as opened:
            picture = ImageOps.exif_transpose(opened).convert("RGB")
        picture.thumbnail((SMALL_SIDE, SMALL_SIDE), Image.Resampling.LANCZOS)
        for copy in range(copies):
            variant = ImageOps.mirror(picture) if copy % 2 else picture
            shift = 4 * (copy // 2)
            variant = variant.crop((shift, shift, variant.width, variant.height))
            buffer = io.BytesIO()
            variant.save(buffer, format="JPEG", quality=90)
            small.append((f"small-{copy}-{Path(name).stem}.jpg", buffer.getvalue()))
    return {f"shared photos ({len(shared)})": shared, f"many small photos ({len(small)}, ≤{SMALL_SIDE} px)": small}


def run(args) -> None:
    import django_rq
    import numpy as np
    import torch
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image
    from rq import SimpleWorker

    from bench.shared_faces import DlibPipeline
    from config.management.commands.serve import available_cpus, plan_processes
    from recognition import inference, services
    from recognition.models import Face, Job, Stage

    plan = plan_processes(available_cpus(), torch.cuda.device_count(), settings.SIGHTLINE_DEVICE)
    os.environ.setdefault("SIGHTLINE_TORCH_THREADS", str(plan.worker_threads))

    User = get_user_model()
    queue = django_rq.get_queue("inference")
    worker = SimpleWorker([queue], connection=queue.connection)
    inference.face_engine()
    inference.image_tagger()
    dlib = DlibPipeline()
    batches = [int(b) for b in args.batches.split(",")]
    sets = photo_sets(args.small_copies)
    turn = iter(range(1_000_000))

    def face_recognition(photos):
        faces = 0
        for _, data in photos:
            with Image.open(io.BytesIO(data)) as opened:
                image = np.asarray(opened.convert("RGB"))
            shapes = dlib.shapes(image)
            faces += len([dlib.encoder.compute_face_descriptor(image, shape, 1) for shape in shapes])
        return {"faces": faces}

    def sightline(batch):
        def contender(photos):
            settings.SIGHTLINE_PHOTO_BATCH = batch
            owner = User.objects.create_user(email=f"bench-{next(turn)}@localhost", password="bench-only-password")
            uploaded_at = time.perf_counter()
            jobs = [services.upload(owner, SimpleUploadedFile(name, data)).job.pk for name, data in photos]
            drained_at = time.perf_counter()
            worker.work(burst=True)
            return outcome(owner, jobs, drained_at - uploaded_at)
        return contender

    def outcome(owner, jobs, uploading_seconds) -> dict:
        finished = list(Job.objects.filter(pk__in=jobs))
        return {
            "faces": Face.objects.filter(asset__owner=owner).count(),
            "failed": sum(job.stage != Stage.COMPLETED for job in finished),
            "upload s": uploading_seconds,
            "stages": {s: statistics.median(j.timings[s]["seconds"] for j in finished if s in j.timings)
                       for s in STAGES},
        }

    def sightline_processes(count, threads, batch, tree=REPO):
        def contender(photos):
            owner = User.objects.create_user(email=f"bench-{next(turn)}@localhost", password="bench-only-password")
            workers = start_workers(count, threads, batch, tree)
            try:
                uploaded_at = time.perf_counter()
                jobs = [services.upload(owner, SimpleUploadedFile(name, data)).job.pk for name, data in photos]
                drained_at = time.perf_counter()
                while Job.objects.filter(pk__in=jobs).active().exists():
                    time.sleep(0.05)
                finished_at = time.perf_counter()
            finally:
                stop_workers(workers)
            return {**outcome(owner, jobs, drained_at - uploaded_at), "elapsed": finished_at - uploaded_at}
        return contender

    contenders = {"face_recognition (dlib HOG)": face_recognition}
    contenders.update({f"Sightline, batch {b}": sightline(b) for b in batches})
    for spec in filter(None, args.workers.split(",")):
        spec, _, batch = spec.partition("@")
        count, _, threads = spec.partition("x")
        count, threads = int(count), int(threads or 0) or max(1, available_cpus() // int(count))
        batch = int(batch or max(batches))
        label = f"Sightline, {count} worker process{'es' * (count > 1)} × {threads} thread{'s' * (threads > 1)}"
        contenders[f"{label}, batch {batch}"] = sightline_processes(count, threads, batch)
        for tree_label, tree in args.trees.items():
            contenders[f"{label}, batch {batch}, {tree_label}"] = sightline_processes(count, threads, batch, tree)
    queue.empty()
    for contender in contenders.values():  # warm-up: caches, allocator, first queries
        contender(sets[next(iter(sets))][:3])

    results = {}
    for set_name, photos in sets.items():
        best: dict[str, tuple[float, dict]] = {}
        for _ in range(args.rounds):
            for label, contender in contenders.items():
                started = time.perf_counter()
                detail = contender(photos)
                elapsed = detail.pop("elapsed", time.perf_counter() - started)  # without starting workers
                if label not in best or elapsed < best[label][0]:
                    best[label] = (elapsed, detail)
        results[set_name] = best

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}), "
          f"device {inference.face_engine().device}, python {platform.python_version()}; "
          f"best of {args.rounds} turns each\n")
    for set_name, best in results.items():
        count = len(sets[set_name])
        reference = best["face_recognition (dlib HOG)"][0]
        print(f"**{set_name}**\n")
        print("| contender | wall s | photos/min | × face_recognition | faces | failed | of which uploading s |")
        print("|---|---|---|---|---|---|---|")
        for label, (elapsed, detail) in best.items():
            uploading = f"{detail['upload s']:.1f}" if "upload s" in detail else "–"
            print(f"| {label} | {elapsed:.1f} | {count / elapsed * 60:.0f} | {reference / elapsed:.2f}× "
                  f"| {detail['faces']} | {detail.get('failed', 0)} | {uploading} |")
        print("\nmedian seconds per job, by stage (a batch's stage is shared by its photos):\n")
        print("| contender | " + " | ".join(STAGES) + " |\n|---|" + "---|" * len(STAGES))
        for label, (_, detail) in best.items():
            if "stages" in detail:
                print(f"| {label} | " + " | ".join(f"{detail['stages'][s]:.3f}" for s in STAGES) + " |")
        print()
    User.objects.filter(email__startswith="bench-", email__endswith="@localhost").delete()


def start_workers(count: int, threads: int, batch: int, tree: Path = REPO) -> list:
    """``count`` inference workers as ``serve`` starts them, ``threads`` torch threads each,
    running the code of checkout ``tree``, returned once each has its models loaded and is registered with RQ (so their start is not
    timed)."""
    import subprocess

    import django_rq
    from django.conf import settings
    from rq import Worker

    env = dict(os.environ, SECRET_KEY=settings.SECRET_KEY, SIGHTLINE_TORCH_THREADS=str(threads),
               SIGHTLINE_PHOTO_BATCH=str(batch), SIGHTLINE_LOG_LEVEL="WARNING")
    log = open(Path(os.environ["SIGHTLINE_DATA_DIR"]) / "bench-workers.log", "a")
    workers = [
        subprocess.Popen([sys.executable, "manage.py", "rqworker", "inference",
                          "--worker-class", "recognition.worker.SightlineWorker"],
                         cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(count)
    ]
    connection = django_rq.get_connection("inference")
    deadline = time.monotonic() + 180
    while {w.pid for w in workers} - {w.pid for w in Worker.all(connection=connection)}:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop_workers(workers)
            raise RuntimeError(f"the workers did not start; see {log.name}")
        time.sleep(0.1)
    return workers


def stop_workers(workers: list) -> None:
    import signal

    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


if __name__ == "__main__":
    main()
