"""How long a full recluster takes: 10k and 100k synthetic faces of one owner.

    .venv/bin/python bench/recluster.py [--sizes 10000 100000]

Faces are synthetic but spread like real dlib embeddings (bench/synthetic_faces.py), stored
with COPY, then ``recluster(full=True)`` runs as `manage.py recluster --full` would: nearest
neighbours from pgvector's HNSW index in batches, DBSCAN with cannot-links in Python, writes
in bulk. Reported: the time to build the HNSW index over the new rows is not counted (the
index exists before faces arrive in real use, and grows with them); the neighbour search and
the rest are timed separately, and run twice (the second run is the idempotent case). Quality
scores against the synthetic identities come with it. Runs on its own embedded servers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    from bench.servers import sightline_on_own_servers

    with sightline_on_own_servers():
        print(f"{platform.node()} · {os.cpu_count()} cores · {time.strftime('%Y-%m-%d')}\n")
        print("| faces | people | insert (COPY) | recluster --full | of which neighbours | again (no change) "
              "| BCubed P | BCubed R | BCubed F1 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size in args.sizes:
            run(size)


def run(size: int) -> None:
    from django.contrib.auth import get_user_model

    from bench.clustering import bcubed, singletons
    from bench.synthetic_faces import insert_faces, synthetic_identities
    from recognition.models import Face
    from recognition.people import clustering

    embeddings, identities = synthetic_identities(size, seed=size)
    user = get_user_model().objects.create_user(email=f"recluster-{size}-{time.time_ns()}@bench", password="x" * 20)
    started = time.perf_counter()
    ids = insert_faces(user, embeddings, identities)
    inserted = time.perf_counter() - started
    # What autovacuum does soon after a bulk load: hint bits and the visibility map set, so the
    # first scans do not pay for them.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE recognition_face")

    neighbour_seconds = 0.0
    real_neighbours = clustering._all_neighbours

    def timed_neighbours(*args, **kwargs):  # wall-clock of the whole (parallel) search
        nonlocal neighbour_seconds
        t = time.perf_counter()
        try:
            return real_neighbours(*args, **kwargs)
        finally:
            neighbour_seconds += time.perf_counter() - t

    clustering._all_neighbours = timed_neighbours
    try:
        started = time.perf_counter()
        clustering.recluster(user.pk, full=True)
        first = time.perf_counter() - started
        first_neighbours = neighbour_seconds
        started = time.perf_counter()
        again = clustering.recluster(user.pk, full=True)
        second = time.perf_counter() - started
    finally:
        clustering._all_neighbours = real_neighbours
    subject_of = dict(Face.objects.filter(owner=user).values_list("pk", "subject_id"))
    p, r, f = bcubed(identities, singletons([subject_of[i] for i in ids]))
    print(f"| {size:,} | {len(set(identities)):,} | {inserted:.1f} s | {first:.1f} s | {first_neighbours:.1f} s "
          f"| {second:.1f} s ({again.changed} moved) | {p:.3f} | {r:.3f} | {f:.3f} |", flush=True)


if __name__ == "__main__":
    main()
