"""Clustering quality: the people Sightline forms from unknown faces, against dlib's Chinese
whispers and DBSCAN on `face_recognition` embeddings of the same photos.

    .venv/bin/python bench/clustering.py [--orders 3] [--synthetic 2000]

Sightline: a new user with nobody enrolled uploads the shared photos (gallery and probes) one
by one in a shuffled order; each goes through the real pipeline (an in-process rq worker) and
the incremental clustering after each job; then `recluster --full` runs once more. Three
different orders by default. The contenders cluster dlib's own embeddings (HOG detector,
5-point shapes, ResNet: what `face_recognition.face_encodings` returns) of the same photos:
`dlib.chinese_whispers_clustering` at 0.5 and DBSCAN at eps 0.5 (min_samples 2, the same
minimum as ours; textbook DBSCAN below, noise points as singletons).

The true identity of each face: a gallery photo's clearest face is its folder's person; in a
probe, the people MANIFEST.csv lists are assigned to its faces by the closest gallery faces
(each person to one face); every other face (a stranger, a background false positive) is a
person of its own. Scores: BCubed precision, recall and F1, and pairwise precision and
recall, over every face (a face left unclustered is a cluster of its own).

``--synthetic N`` also scores the clustering alone (``recognition.people.clustering``, the
same code) on N synthetic faces whose spread is fitted to the shared photos' dlib embeddings
(bench/synthetic_faces.py), next to the same DBSCAN and Chinese whispers: a set many times
larger, with identities of 1 to 50 faces, that nothing was tuned on.

Runs against its own embedded servers (var/bench/).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections import defaultdict
from itertools import permutations
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.servers import sightline_on_own_servers  # noqa: E402
from bench.shared_faces import DlibPipeline, faces_dir, gallery_photos, load_rgb, probe_photos  # noqa: E402


# --- scores ------------------------------------------------------------------------------------


def bcubed(truth: list, clusters: list) -> tuple[float, float, float]:
    by_cluster, by_truth = defaultdict(list), defaultdict(list)
    for i, (t, c) in enumerate(zip(truth, clusters)):
        by_cluster[c].append(i)
        by_truth[t].append(i)
    precision = np.mean([sum(truth[j] == truth[i] for j in by_cluster[clusters[i]]) / len(by_cluster[clusters[i]])
                         for i in range(len(truth))])
    recall = np.mean([sum(clusters[j] == clusters[i] for j in by_truth[truth[i]]) / len(by_truth[truth[i]])
                      for i in range(len(truth))])
    return precision, recall, 2 * precision * recall / (precision + recall)


def pairwise(truth: list, clusters: list) -> tuple[float, float]:
    same_cluster = same_truth = both = 0
    for i in range(len(truth)):
        for j in range(i + 1, len(truth)):
            c, t = clusters[i] == clusters[j], truth[i] == truth[j]
            same_cluster += c
            same_truth += t
            both += c and t
    return (both / same_cluster if same_cluster else 1.0), (both / same_truth if same_truth else 1.0)


def singletons(labels: list) -> list:
    """None (not clustered) → a cluster of its own."""
    return [label if label is not None else ("alone", i) for i, label in enumerate(labels)]


def dbscan(embeddings: np.ndarray, eps: float, min_samples: int) -> list:
    """Textbook DBSCAN (Ester et al. 1996) on Euclidean distances; noise → None."""
    # |a - b|² = |a|² + |b|² - 2 a·b: an n×n matrix, not the n×n×d of differences.
    squares = (embeddings.astype(np.float64) ** 2).sum(axis=1)
    distances = np.sqrt(np.maximum(squares[:, None] + squares[None] - 2 * embeddings @ embeddings.T, 0))
    neighbours = [np.flatnonzero(row <= eps) for row in distances]
    core = [len(n) >= min_samples for n in neighbours]
    labels: list = [None] * len(embeddings)
    cluster = 0
    for i in range(len(embeddings)):
        if labels[i] is not None or not core[i]:
            continue
        labels[i] = cluster
        queue = list(neighbours[i])
        while queue:
            j = queue.pop()
            if labels[j] is None:
                labels[j] = cluster
                if core[j]:
                    queue.extend(neighbours[j])
        cluster += 1
    return labels


def chinese_whispers(embeddings: np.ndarray, threshold: float) -> list:
    import dlib

    return list(dlib.chinese_whispers_clustering([dlib.vector(e.tolist()) for e in embeddings], threshold))


# --- ground truth -----------------------------------------------------------------------------


def label_faces(photo_faces: dict) -> dict:
    """``photo_faces``: photo → [(key, embedding, quality)]; returns key → identity."""
    truth = {}
    references = defaultdict(list)
    for photo, faces in photo_faces.items():
        if photo.kind == "gallery" and faces:
            best = max(faces, key=lambda f: f[2])
            truth[best[0]] = photo.subjects[0]
            references[photo.subjects[0]].append(best[1])
    for photo, faces in photo_faces.items():
        expected = list(photo.subjects) if photo.kind == "probe" else []
        assigned = {}
        if expected and faces:
            # The expected people to faces, all ways, keeping the closest overall.
            best_cost, best = np.inf, {}
            k = min(len(expected), len(faces))
            for chosen in permutations(range(len(faces)), k):
                cost = sum(min(np.linalg.norm(faces[f][1] - r) for r in references[p])
                           for p, f in zip(expected, chosen))
                if cost < best_cost:
                    best_cost, best = cost, {faces[f][0]: p for p, f in zip(expected, chosen)}
            assigned = best
        for key, _, _ in faces:
            truth.setdefault(key, assigned.get(key, ("stranger", key)))
    return truth


# --- Sightline through its pipeline -----------------------------------------------------------


def run_sightline(photos, seed: int):
    import django_rq
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rq import SimpleWorker

    from recognition import services
    from recognition.models import Face
    from recognition.people import clustering

    user = get_user_model().objects.create_user(email=f"clustering-{seed}-{time.time_ns()}@bench", password="x" * 20)
    order = list(photos)
    random.Random(seed).shuffle(order)
    queue = django_rq.get_queue("inference")
    worker = SimpleWorker([queue], connection=queue.connection)
    asset_of = {}
    for photo in order:
        outcome = services.upload(user, SimpleUploadedFile(photo.path.name, photo.path.read_bytes()), photo.path.name)
        asset_of[photo] = outcome.asset.pk
        worker.work(burst=True, with_scheduler=False)

    def snapshot():
        faces = list(Face.objects.filter(owner=user).order_by("pk"))
        photo_faces = {p: [(f.pk, np.asarray(f.embedding), f.quality) for f in faces if f.asset_id == asset_of[p]]
                       for p in photos}
        return faces, photo_faces

    faces, photo_faces = snapshot()
    incremental = {f.pk: f.subject_id for f in faces}
    clustering.recluster(user.pk, full=True)
    full = {f.pk: f.subject_id for f in Face.objects.filter(owner=user)}
    return photo_faces, incremental, full


def run_dlib(photos):
    pipeline = DlibPipeline()
    photo_faces, keys = {}, []
    embeddings = []
    for photo in photos:
        image = load_rgb(photo.path)
        shapes = pipeline.shapes(image)
        encoded = pipeline.encode(image, shapes)
        faces = []
        for i, (shape, embedding) in enumerate(zip(shapes, encoded)):
            key = (photo.name, i)
            faces.append((key, embedding, shape.rect.area()))  # dlib has no quality: the biggest face
            keys.append(key)
            embeddings.append(embedding)
        photo_faces[photo] = faces
    return photo_faces, keys, np.array(embeddings)


def score_row(name: str, truth: list, clusters: list) -> str:
    p, r, f = bcubed(truth, clusters)
    pp, pr = pairwise(truth, clusters)
    clusters_formed = len({c for c in clusters if not (isinstance(c, tuple) and c[0] == "alone")})
    return f"| {name} | {len(truth)} | {clusters_formed} | {p:.3f} | {r:.3f} | {f:.3f} | {pp:.3f} | {pr:.3f} |"


HEADER = ("| clustering | faces | clusters | BCubed P | BCubed R | BCubed F1 | pairwise P | pairwise R |\n"
          "|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=0, help="also score N synthetic faces")
    args = parser.parse_args()
    root = faces_dir()
    with sightline_on_own_servers():
        from django.conf import settings

        print(f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
              f"{time.strftime('%Y-%m-%d')} · distance {settings.SIGHTLINE_CLUSTER_DISTANCE}, "
              f"min faces {settings.SIGHTLINE_CLUSTER_MIN_FACES}, min quality {settings.SIGHTLINE_CLUSTER_MIN_QUALITY}\n")
        photos = gallery_photos(root) + probe_photos(root)
        print(HEADER)
        for seed in range(args.orders):
            photo_faces, incremental, full = run_sightline(photos, seed)
            truth = label_faces(photo_faces)
            keys = sorted(truth)
            print(score_row(f"Sightline, order {seed + 1}, after each upload", [truth[k] for k in keys],
                            singletons([incremental[k] for k in keys])))
            print(score_row(f"Sightline, order {seed + 1}, then recluster --full", [truth[k] for k in keys],
                            singletons([full[k] for k in keys])))
        photo_faces, keys, embeddings = run_dlib(photos)
        truth = label_faces(photo_faces)
        labels = [truth[k] for k in keys]
        print(score_row("dlib Chinese whispers 0.5", labels, chinese_whispers(embeddings, 0.5)))
        print(score_row("DBSCAN eps 0.5, min 2", labels, singletons(dbscan(embeddings, 0.5, 2))))
        if args.synthetic:
            synthetic(args.synthetic)


def synthetic(count: int) -> None:
    """The clustering code alone on a synthetic set, through the database and pgvector."""
    from django.contrib.auth import get_user_model

    from bench.synthetic_faces import insert_faces, synthetic_identities
    from recognition.models import Face
    from recognition.people import clustering
    from django.conf import settings

    embeddings, identities = synthetic_identities(count, seed=7)
    user = get_user_model().objects.create_user(email=f"synthetic-{time.time_ns()}@bench", password="x" * 20)
    ids = insert_faces(user, embeddings, identities)
    started = time.perf_counter()
    clustering.recluster(user.pk, full=True)
    seconds = time.perf_counter() - started
    subject_of = dict(Face.objects.filter(owner=user).values_list("pk", "subject_id"))
    truth = list(identities)
    print(f"\nSynthetic set: {count} faces of {len(set(truth))} people (1 to 50 faces each), "
          f"recluster --full {seconds:.1f} s\n")
    print(HEADER)
    eps = settings.SIGHTLINE_CLUSTER_DISTANCE
    print(score_row(f"Sightline recluster (distance {eps})", truth, singletons([subject_of[i] for i in ids])))
    print(score_row("dlib Chinese whispers 0.5", truth, chinese_whispers(embeddings, 0.5)))
    print(score_row("DBSCAN eps 0.5, min 2", truth, singletons(dbscan(embeddings, 0.5, 2))))


if __name__ == "__main__":
    main()
