"""torch threads on shared cores: intra-op threads × OpenMP wait policy, quiet and busy.

    .venv/bin/python bench/threads.py [--photos 10] [--busy 2]

The engine analyses the first ``--photos`` probe photos (scaled to 400 px) and the tagger tags
them, one photo at a time as a worker does, in a fresh process per setting (libgomp reads
OMP_WAIT_POLICY once, when torch loads). Each setting runs on a quiet machine and again while
``--busy`` other processes keep the cores busy (what a worker meets next to web processes and
another worker). Prints markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
import numpy as np, torch
from PIL import Image
from shared_faces import faces_dir, probe_photos
from recognition.engine import FaceEngine, ImageTagger
torch.set_num_threads({threads})
pictures = []
for photo in probe_photos(faces_dir())[:{photos}]:
    with Image.open(photo.path) as opened:
        picture = opened.convert("RGB")
    picture.thumbnail((400, 400))
    pictures.append(np.asarray(picture))
engine, tagger = FaceEngine(device="cpu"), ImageTagger(device="cpu")
engine.analyze(pictures[:1]); tagger.tag_and_embed(pictures[:1])
started = time.perf_counter()
for picture in pictures * {repeat}:
    engine.analyze([picture])
    tagger.tag_and_embed([picture])
print(json.dumps(time.perf_counter() - started))
"""


def spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def timed(threads: int, policy: str, photos: int, repeat: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    code = CHILD.format(repo=str(REPO), bench=str(REPO / "bench"), threads=threads, photos=photos, repeat=repeat)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="times each photo is analysed")
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the busy runs")
    args = parser.parse_args()

    settings = [(threads, policy) for threads in (1, 2) for policy in ("ACTIVE", "PASSIVE")]
    rows = {}
    for setting in settings:
        rows[setting] = [timed(*setting, args.photos, args.repeat)]
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    try:
        for setting in settings:
            rows[setting].append(timed(*setting, args.photos, args.repeat))
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()

    print(f"{os.cpu_count()} cores; {args.photos} photos ≤400 px × {args.repeat}, detect+align+embed+tag one at a time; "
          f"busy = {args.busy} other processes spinning\n")
    print("| torch threads | OMP_WAIT_POLICY | quiet s | busy s |\n|---|---|---|---|")
    for (threads, policy), (quiet, busy) in rows.items():
        print(f"| {threads} | {policy} | {quiet:.2f} | {busy:.2f} |")


if __name__ == "__main__":
    main()
