"""Face engine vs dlib (face_recognition's pipeline), same photos, same machine, same run.

Measures
* embed_chips throughput (chips/s) at batch 1, 32 and 128 against dlib's
  compute_face_descriptor on the same 150×150 chips (its batch overload);
* analyze throughput (images/s) on the shared gallery+probe photos against dlib's HOG
  detector (one upsampling, face_locations' default) + 5-point shape predictor +
  compute_face_descriptor(num_jitters=1), i.e. face_recognition.face_encodings;
* accuracy at distance 0.6 on all same/different-person pairs of faces with a known
  identity (the biggest face of each gallery photo and of each single-person probe);
* the detector's two batching modes on the same photos.

On CUDA the engine runs twice, fp32 (SIGHTLINE_FP16=0) and fp16 (when the parity check
lets it). Prints markdown for docs/BENCHMARKS.md.
Timings are each contender's best of --rounds turns, taken in alternation.
Usage: .venv/bin/python bench/engine.py [--device cpu|cuda] [--rounds N]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import subprocess
import time

import numpy as np
import torch

from shared_faces import DlibPipeline, faces_dir, gallery_photos, load_rgb, probe_photos

from recognition.engine import FaceEngine
from recognition.engine.detector import DetectorConfig, MTCNNDetector

THRESHOLD = 0.6
BATCHES = (1, 32, 128)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def race(contenders: dict, rounds: int) -> dict[str, float]:
    """Best wall time of each contender over `rounds`, taking turns after one warm-up each.

    Taking turns, and keeping each one's best round, keeps the comparison fair when other
    work shares the machine: a busy spell slows whoever runs in it, not one side only.
    """
    for fn in contenders.values():
        fn()
    best = {label: float("inf") for label in contenders}
    for _ in range(rounds):
        for label, fn in contenders.items():
            synchronize()
            started = time.perf_counter()
            fn()
            synchronize()
            best[label] = min(best[label], time.perf_counter() - started)
    return best


def engines(device: str) -> dict[str, FaceEngine]:
    os.environ["SIGHTLINE_FP16"] = "0"
    found = {"engine fp32": FaceEngine(device=device)}
    if found["engine fp32"].device.type == "cuda":
        os.environ["SIGHTLINE_FP16"] = "1"
        half = FaceEngine(device=device)
        found["engine fp16" if half.fp16 else "engine fp16 (refused by parity check)"] = half
    os.environ.pop("SIGHTLINE_FP16")
    return found


def benchmark_chips(engine: FaceEngine, images, faces) -> np.ndarray:
    chips = [engine.align(image, face.landmarks) for image, found in zip(images, faces)
             for face in found]
    return np.stack(list(itertools.islice(itertools.cycle(chips), max(BATCHES))))


def embed_rates(runners: dict, chips: np.ndarray, rounds: int) -> dict[str, dict[int, float]]:
    rates: dict[str, dict[int, float]] = {label: {} for label in runners}
    for batch in BATCHES:
        part = chips[:batch]
        calls = max(1, 64 // batch)  # enough work per timing at small batches
        seconds = race({label: (lambda e=embed: [e(part) for _ in range(calls)])
                        for label, embed in runners.items()}, rounds)
        for label in runners:
            rates[label][batch] = batch * calls / seconds[label]
    return rates


def dlib_analyze(pipeline: DlibPipeline, images) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image: (boxes x1,y1,x2,y2, descriptors), biggest first."""
    results = []
    for image in images:
        shapes = pipeline.shapes(image)
        boxes = np.array([[s.rect.left(), s.rect.top(), s.rect.right(), s.rect.bottom()]
                          for s in shapes], dtype=np.float32).reshape(-1, 4)
        descriptors = pipeline.encode(image, shapes)
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        results.append((boxes[order], descriptors[order]))
    return results


def known_identity_embeddings(photos, per_image: list[np.ndarray | None]):
    """(labels, embeddings, photo indices) of biggest faces in single-person photos."""
    labels, embeddings, indices = [], [], []
    for i, (photo, embedding) in enumerate(zip(photos, per_image)):
        if len(photo.subjects) == 1 and embedding is not None:
            labels.append(photo.subjects[0])
            embeddings.append(embedding)
            indices.append(i)
    return labels, np.array(embeddings), indices


def pair_accuracy(labels, embeddings) -> dict[str, float]:
    same, different = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        distance = float(np.linalg.norm(embeddings[i] - embeddings[j]))
        (same if labels[i] == labels[j] else different).append(distance)
    same, different = np.array(same), np.array(different)
    accepted, rejected = (same <= THRESHOLD).sum(), (different > THRESHOLD).sum()
    return {"pairs": len(same) + len(different), "same": len(same), "different": len(different),
            "accuracy": (accepted + rejected) / (len(same) + len(different)),
            "tpr": accepted / len(same), "tnr": rejected / len(different),
            "same_mean": same.mean(), "same_max": same.max(),
            "different_mean": different.mean(), "different_min": different.min()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda (default: SIGHTLINE_DEVICE/auto)")
    parser.add_argument("--rounds", type=int, default=3, help="timed turns per contender")
    args = parser.parse_args()

    root = faces_dir()
    photos = gallery_photos(root) + probe_photos(root)
    images = [load_rgb(p.path) for p in photos]
    megapixels = sum(i.shape[0] * i.shape[1] for i in images) / 1e6
    found_engines = engines(args.device)
    first = next(iter(found_engines.values()))
    dlib_pipeline = DlibPipeline()

    # Throughput.
    engine_faces = {label: e.analyze(images) for label, e in found_engines.items()}
    chips = benchmark_chips(first, images, engine_faces["engine fp32"])
    runners = {label: e.embed_chips for label, e in found_engines.items()}
    runners["dlib"] = lambda c: dlib_pipeline.encoder.compute_face_descriptor(list(c))
    embed = embed_rates(runners, chips, args.rounds)
    dlib_results = dlib_analyze(dlib_pipeline, images)
    contenders = {label: (lambda e=e: e.analyze(images)) for label, e in found_engines.items()}
    contenders["dlib"] = lambda: dlib_analyze(dlib_pipeline, images)
    analyze = {label: len(images) / seconds
               for label, seconds in race(contenders, args.rounds).items()}

    # Batching modes of the detector (P-Net per same-size group vs one padded canvas).
    detectors = {mode: MTCNNDetector(first.device, DetectorConfig(batching=mode))
                 for mode in ("group", "pad")}
    batching = race({mode: (lambda d=d: d.detect(images)) for mode, d in detectors.items()},
                    args.rounds)

    # Accuracy on pairs of faces both pipelines found.
    engine_best = {label: [f[0].embedding if f else None for f in faces]
                   for label, faces in engine_faces.items()}
    dlib_best = [d[1][0] if len(d[1]) else None for d in dlib_results]
    both = [i for i in range(len(photos))
            if dlib_best[i] is not None and engine_best["engine fp32"][i] is not None]
    accuracy = {}
    for label, best in list(engine_best.items()) + [("dlib", dlib_best)]:
        labels, embeddings, _ = known_identity_embeddings([photos[i] for i in both],
                                                          [best[i] for i in both])
        accuracy[label] = pair_accuracy(labels, embeddings)
    engine_labels, engine_embeddings, _ = known_identity_embeddings(photos, engine_best["engine fp32"])
    accuracy["engine fp32, all its faces"] = pair_accuracy(engine_labels, engine_embeddings)

    print_report(first, photos, images, megapixels, embed, analyze, batching, accuracy,
                 engine_faces, dlib_results)


def print_report(engine, photos, images, megapixels, embed, analyze, batching, accuracy,
                 engine_faces, dlib_results) -> None:
    device = engine.device
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"- date: {datetime.date.today().isoformat()}; torch {torch.__version__}; "
          f"device: {device} ({device_name}); CPU: {cpu_model()}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}")
    print(f"- photos: {len(images)} (gallery + probes, {megapixels:.1f} megapixels in all); "
          f"model_version `{engine.model_version}`")
    print()
    labels = list(embed)
    print("| throughput | " + " | ".join(labels) + " | " +
          " | ".join(f"{l} / dlib" for l in labels if l != "dlib") + " |")
    print("|---|" + "---|" * (2 * len(labels) - 1))
    for batch in BATCHES:
        rates = [embed[l][batch] for l in labels]
        ratios = [embed[l][batch] / embed["dlib"][batch] for l in labels if l != "dlib"]
        print(f"| embed_chips, batch {batch} (chips/s) | " + " | ".join(f"{r:.1f}" for r in rates)
              + " | " + " | ".join(f"{r:.2f}×" for r in ratios) + " |")
    rates = [analyze[l] for l in labels]
    ratios = [analyze[l] / analyze["dlib"] for l in labels if l != "dlib"]
    print(f"| analyze, {len(images)} photos (images/s) | " + " | ".join(f"{r:.2f}" for r in rates)
          + " | " + " | ".join(f"{r:.2f}×" for r in ratios) + " |")
    print()
    print(f"| detector batching ({len(images)} mixed-size photos) | seconds (best of turns) |")
    print("|---|---|")
    for mode, seconds in batching.items():
        print(f"| {mode} | {seconds:.2f} |")
    print()
    print("| accuracy at 0.6 | pairs (same / different) | accuracy | same-person accepted | "
          "different-person rejected | same-person distance mean / max | "
          "different-person distance mean / min |")
    print("|---|---|---|---|---|---|---|")
    for label, a in accuracy.items():
        print(f"| {label} | {a['pairs']} ({a['same']} / {a['different']}) | {a['accuracy']:.3f} | "
              f"{a['tpr']:.3f} | {a['tnr']:.3f} | {a['same_mean']:.3f} / {a['same_max']:.3f} | "
              f"{a['different_mean']:.3f} / {a['different_min']:.3f} |")
    print()
    print("| photo | faces: engine | faces: dlib HOG |")
    print("|---|---|---|")
    for photo, found, (boxes, _) in zip(photos, engine_faces["engine fp32"], dlib_results):
        print(f"| {photo.name} | {len(found)} | {len(boxes)} |")


if __name__ == "__main__":
    main()
