"""Reports at scale: about 1M faces and 100k jobs of 100 owners, every report timed.

    .venv/bin/python bench/reports.py [--faces-per-asset 10] [--repeat 5] [--keep]

Runs against embedded servers of its own (``var/bench-reports/``, never the development or test
data), so it may wipe and load its database freely. Rows are generated inside PostgreSQL with
``generate_series`` (a few minutes); the HNSW indexes of the embeddings are dropped first in this
database, because building them over 1.1M generated vectors takes far longer than the rest and no
report reads them. ``--keep`` reuses the data of an earlier run.

Prints, as markdown for docs/BENCHMARKS.md: the data, then for each report and selection the
median of ``--repeat`` runs computed afresh (SQL + Python, cache bypassed), and of API requests
through Django's test client with the cache missed (versions bumped) and hit.
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
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench-reports"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SIGHTLINE_HTTPS", "0")
os.environ.setdefault("SIGHTLINE_LOG_LEVEL", "WARNING")  # no log line per request timed

OWNERS = 100
ASSETS = 100_000
NAMED_PER_OWNER = 30
UNNAMED_PER_OWNER = 70
VIDEO_SHARE = 0.1
FAILED_SHARE = 0.04
DAYS = 365
DROPPED_INDEXES = ("face_embedding_hnsw", "face_example_embedding_hnsw", "image_embedding_hnsw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces-per-asset", type=int, default=10, help="mean faces per asset (1M at 10)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (the median is shown)")
    parser.add_argument("--keep", action="store_true", help="reuse the data of an earlier run")
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        sys.exit("bench/reports.py wipes its database: it runs only on its own embedded servers (unset DATABASE_URL).")

    from bench.servers import sightline_on_own_servers

    with sightline_on_own_servers():
        run(args)


def run(args) -> None:
    if not args.keep:
        started = time.perf_counter()
        generate(args.faces_per_asset)
        print(f"generated in {time.perf_counter() - started:.0f} s\n")
    describe_machine_and_data()
    time_reports(args.repeat)


# --- data ----------------------------------------------------------------------------------


def _execute(sql: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def generate(faces_per_asset: int) -> None:
    """Wipe this database's rows and load the benchmark's, all in SQL."""
    from django.contrib.auth import get_user_model

    for index in DROPPED_INDEXES:
        _execute(f"DROP INDEX IF EXISTS {index}")
    _execute("TRUNCATE accounts_user, media_asset, recognition_subject, recognition_job, recognition_face, "
             "recognition_imageembedding RESTART IDENTITY CASCADE")
    User = get_user_model()
    users = [User(email=f"owner{n:03d}@bench.localhost", password="!") for n in range(1, OWNERS + 1)]
    User.objects.bulk_create(users)  # ids 1..OWNERS after RESTART IDENTITY
    User.objects.create_user(email="staff@bench.localhost", password="bench-only-password", is_staff=True)
    _execute("SELECT setseed(0.42)")

    # People: per owner, ids owner*100 + 1..30 named, + 31..100 without a name.
    _execute("""
        INSERT INTO recognition_subject (id, owner_id, name, notes, hidden, created_at)
        SELECT (o - 1) * 100 + k, o, CASE WHEN k <= %s THEN 'Person ' || o || '-' || k ELSE '' END, '',
               k %% 17 = 0, now() - interval '400 days'
        FROM generate_series(1, %s) AS o, generate_series(1, %s) AS k
    """, [NAMED_PER_OWNER, OWNERS, NAMED_PER_OWNER + UNNAMED_PER_OWNER])
    _execute("SELECT setval(pg_get_serial_sequence('recognition_subject', 'id'), (SELECT max(id) FROM recognition_subject))")

    # Assets spread over a year; owners uneven (owner o gets a share growing with o).
    _execute("""
        INSERT INTO media_asset (id, owner_id, kind, original_name, file, sha256, size_bytes, content_type, width,
                                 height, duration_seconds, fps, frame_count, thumbnail, created_at)
        SELECT i, 1 + floor(sqrt(random()) * %s)::int, kind,
               'file-' || i || CASE WHEN kind = 'video' THEN '.mp4' ELSE '.jpg' END, 'bench/' || i,
               md5(i::text) || md5((i + 1)::text),
               CASE WHEN kind = 'video' THEN 5000000 + (random() * 50000000)::bigint
                    ELSE 200000 + (random() * 4000000)::bigint END,
               CASE WHEN kind = 'video' THEN 'video/mp4' ELSE 'image/jpeg' END, 1920, 1080,
               CASE WHEN kind = 'video' THEN 10 + random() * 120 END, CASE WHEN kind = 'video' THEN 30 END,
               CASE WHEN kind = 'video' THEN 3000 END, '',
               now() - random() * %s * interval '1 day'
        FROM (SELECT i, CASE WHEN random() < %s THEN 'video' ELSE 'image' END AS kind
              FROM generate_series(1, %s) AS i) AS generated
    """, [OWNERS, DAYS, VIDEO_SHARE, ASSETS])
    _execute("SELECT setval(pg_get_serial_sequence('media_asset', 'id'), %s)", [ASSETS])

    # One job per asset, ids as the asset's; timings as Job.advance writes them.
    _execute("""
        INSERT INTO recognition_job (id, asset_id, stage, progress, timings, error, error_code, attempts, rq_job_id,
                                     model_version, created_at, updated_at, finished_at)
        SELECT id, id, CASE WHEN failed THEN 'failed' ELSE 'completed' END, CASE WHEN failed THEN 10 ELSE 100 END,
               jsonb_build_object(
                   'uploading', jsonb_build_object('started_at', t0, 'ended_at', t1, 'seconds', round(up::numeric, 4)),
                   'queued', jsonb_build_object('started_at', t1, 'ended_at', t2, 'seconds', round(q::numeric, 4)),
                   'detecting', jsonb_build_object('started_at', t2, 'ended_at', t3, 'seconds', round(det::numeric, 4)))
               || CASE WHEN failed THEN '{}'::jsonb ELSE jsonb_build_object(
                   'enhancing', jsonb_build_object('started_at', t3, 'ended_at', t4, 'seconds', round(enh::numeric, 4)),
                   'recognizing', jsonb_build_object('started_at', t4, 'ended_at', t5, 'seconds', round(rec::numeric, 4)))
                  END,
               CASE WHEN failed THEN 'The worker could not finish this file.' ELSE '' END,
               CASE WHEN failed THEN (ARRAY['decode_error', 'timeout', 'worker_lost', 'too_large', 'engine_error'])
                                     [1 + floor(power(random(), 2) * 5)::int] ELSE '' END,
               1, '', 'bench-pipeline-v1', t1, CASE WHEN failed THEN t3 ELSE t5 END, CASE WHEN failed THEN t3 ELSE t5 END
        FROM (
            SELECT id, failed, up, q, det, enh, rec, t0,
                   t0 + up * interval '1 second' AS t1,
                   t0 + (up + q) * interval '1 second' AS t2,
                   t0 + (up + q + det) * interval '1 second' AS t3,
                   t0 + (up + q + det + enh) * interval '1 second' AS t4,
                   t0 + (up + q + det + enh + rec) * interval '1 second' AS t5
            FROM (
                SELECT a.id, a.created_at AS t0, random() < %s AS failed,
                       0.05 + random() * 0.45 AS up, -ln(1 - random()) * 4 AS q,
                       CASE WHEN a.kind = 'video' THEN 5 + random() * 55 ELSE 0.2 + random() * 1.8 END AS det,
                       0.05 + random() * 0.25 AS enh, 0.1 + random() * 0.9 AS rec
                FROM media_asset a
            ) AS durations
        ) AS stamped
    """, [FAILED_SHARE])
    _execute("SELECT setval(pg_get_serial_sequence('recognition_job', 'id'), %s)", [ASSETS])

    # Faces: 1..2*mean-1 per asset (deterministic per asset), each named, unnamed, unknown or dismissed.
    _execute(f"""
        INSERT INTO recognition_face (asset_id, owner_id, job_id, frame_index, timestamp, box, landmarks, score,
                                      quality, embedding, model_version, subject_id, match_distance, is_example,
                                      decided_by, decided_at, dismissed, created_at)
        SELECT a.id, a.owner_id, a.id,
               CASE WHEN a.kind = 'video' THEN n END, CASE WHEN a.kind = 'video' THEN n::float END,
               '[10, 10, 60, 70]'::jsonb, '[[20, 30], [45, 30], [32, 45], [24, 58], [42, 58]]'::jsonb,
               0.9 + random() * 0.1, random(), vec.v,
               CASE WHEN a.id %% 20 = 0 THEN 'bench-face-v0' ELSE 'bench-face-v1' END,
               CASE WHEN r.x < 0.20 THEN NULL
                    WHEN r.x < 0.50 THEN (a.owner_id - 1) * 100 + %s + 1 + floor(random() * %s)::int
                    ELSE (a.owner_id - 1) * 100 + 1 + floor(power(random(), 2) * %s)::int END,
               NULL, false, CASE WHEN r.x < 0.05 THEN 'human' ELSE 'auto' END,
               NULL, r.x < 0.05, a.created_at + interval '30 seconds'
        FROM media_asset a
        CROSS JOIN LATERAL generate_series(1, 1 + (abs(hashint4(a.id::int)) %% {2 * faces_per_asset - 1})) AS n
        CROSS JOIN LATERAL (SELECT random() + 0 * n AS x) AS r
        CROSS JOIN (SELECT ('[' || array_to_string(array_fill(0.05::real, ARRAY[128]), ',') || ']')::vector AS v)
            AS vec
    """, [NAMED_PER_OWNER, UNNAMED_PER_OWNER, NAMED_PER_OWNER])
    # A face dismissed as "not a face" has no person (the model's check constraint).
    _execute("""
        INSERT INTO recognition_imageembedding (asset_id, embedding, model_version)
        SELECT a.id, vec.v, 'bench-mobilenet-v1'
        FROM media_asset a
        CROSS JOIN (SELECT ('[' || array_to_string(array_fill(0.01::real, ARRAY[1280]), ',') || ']')::vector AS v)
            AS vec
        WHERE a.kind = 'image'
    """)
    _execute("VACUUM ANALYZE")


def describe_machine_and_data() -> None:
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""SELECT (SELECT count(*) FROM accounts_user), (SELECT count(*) FROM media_asset),
                                 (SELECT count(*) FROM recognition_job), (SELECT count(*) FROM recognition_face),
                                 (SELECT count(*) FROM recognition_subject), version()""")
        users, assets, jobs, faces, subjects, pg_version = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM media_asset WHERE owner_id = %s", [OWNERS])
        owner_assets = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM recognition_face WHERE owner_id = %s", [OWNERS])
        owner_faces = cursor.fetchone()[0]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"- date: {time.strftime('%Y-%m-%d')}; machine: {cpu}, {os.cpu_count()} cores; "
          f"python {platform.python_version()}, Django {django.get_version()}; {pg_version.split(',')[0]}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- data: {users - 1} owners (+1 staff), {assets:,} assets ({VIDEO_SHARE:.0%} videos) over {DAYS} days, "
          f"{jobs:,} jobs ({FAILED_SHARE:.0%} failed), {faces:,} faces, {subjects:,} people")
    print(f"- \"one owner\": the biggest, owner{OWNERS:03d}@bench.localhost, {owner_assets:,} assets and "
          f"{owner_faces:,} faces (owner n has about (2n - 1) × 10 assets)\n")


# --- timing --------------------------------------------------------------------------------


def _median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def time_reports(repeat: int) -> None:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from analysis import cache, reports, services
    from analysis.filters import ReportFilters
    from recognition.models import Subject

    User = get_user_model()
    owner = User.objects.get(email=f"owner{OWNERS:03d}@bench.localhost")
    staff = User.objects.get(email="staff@bench.localhost")
    busiest = Subject.objects.filter(owner=owner).exclude(name="").order_by("id").first()
    today = timezone.localdate()
    month = {"since": today - timedelta(days=30), "until": today}
    selections = [
        ("one owner", owner, ReportFilters(owner_id=owner.pk), {}),
        ("one owner, last 30 days", owner, ReportFilters(owner_id=owner.pk, **month),
         {k: v.isoformat() for k, v in month.items()}),
        ("one owner, one person", owner, ReportFilters(owner_id=owner.pk, person_id=busiest.pk),
         {"person": busiest.pk}),
        ("everyone (staff)", staff, ReportFilters(), {}),
        ("everyone, last 30 days", staff, ReportFilters(**month), {k: v.isoformat() for k, v in month.items()}),
        ("everyone, videos", staff, ReportFilters(kind="video"), {"kind": "video"}),
    ]
    print("| report | selection | rows | computed (ms) | API, cache missed (ms) | API, cache hit (ms) |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for name in reports.REPORTS:
        for label, viewer, filters, params in selections:
            rows = services.run(name, filters, use_cache=False).rows  # warms PostgreSQL's buffers
            computed = _median_ms(lambda: services.run(name, filters, use_cache=False), repeat)
            client = Client()
            client.force_login(viewer)
            url = f"/api/v1/reports/{name}/"

            def missed():
                cache.bump(viewer.pk)
                cache.bump(owner.pk)
                response = client.get(url, params)
                assert response.status_code == 200 and response["X-Report-Cache"] == "miss", response

            def hit():
                response = client.get(url, params)
                assert response.status_code == 200 and response["X-Report-Cache"] == "hit", response

            api_missed = _median_ms(missed, repeat)
            client.get(url, params)
            api_hit = _median_ms(hit, repeat)
            worst = max(worst, api_missed)
            print(f"| {name} | {label} | {len(rows)} | {computed:.0f} | {api_missed:.0f} | {api_hit:.1f} |")
    print(f"\nslowest API answer with the cache missed: {worst:.0f} ms; load average after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
