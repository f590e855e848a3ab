"""Redis loses everything mid-batch (FLUSHALL, or a restart without its data): PostgreSQL is the truth.

A batch of photos is uploaded and a real worker process works through it; mid-batch Redis
forgets the queue. The jobs still queued in PostgreSQL have no rq job left, and the reconcile
step finds them and queues them again: ``manage.py requeue`` after the FLUSHALL, the worker's own
maintenance after the restart. Every upload then ends completed with exactly the faces of a
clean run of the same photos (no job lost, no face twice), and a WebSocket client that
reconnects is sent the current state of every job.
"""

from __future__ import annotations

import io
import re
import shutil
import time
from datetime import timedelta

import django_rq
import pytest
import redis
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.management import call_command
from django.db.models import F
from rest_framework_simplejwt.tokens import RefreshToken

from config.asgi import application
from recognition import services
from recognition.models import TERMINAL_STAGES, Job, Stage
from tests.integration.faults.conftest import (
    assert_completed_once,
    embedded_redis,
    faces_per_photo,
    start_worker,
    wait_for,
)
from tests.integration.recognition.api_helpers import upload_of
from tests.servers import log_tail, stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The worker looks for lost jobs every second here (60 s by default), and retries soon.
# Two photos a batch: a worker takes waiting photos with the one it starts (jobs.process_asset),
# and the fault must still find jobs waiting in Redis only.
WORKER_ENV = {"SIGHTLINE_WORKER_MAINTENANCE_SECONDS": "1", "SIGHTLINE_JOB_RETRY_INTERVALS": "1,2,4",
              "SIGHTLINE_PHOTO_BATCH": "2"}
_clean_counts: dict[str, int] = {}


@pytest.fixture
def worker(request, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    marker = request.node.get_closest_marker("worker_env")
    env = {**WORKER_ENV, **(marker.args[0] if marker else {})}
    process = start_worker("inference", extra_env={"MEDIA_ROOT": str(tmp_path), **env})
    yield process
    stop_process(process)
    print(f"--- worker {process.pid} ---\n{log_tail(process, 60)}")


@pytest.fixture
def clean_counts(worker, other_user, batch) -> dict[str, int]:
    """Faces per photo when the batch runs without a fault (another user's library; once per module)."""
    if not _clean_counts:
        for path in batch:
            services.upload(other_user, upload_of(path))
        jobs = Job.objects.filter(asset__owner=other_user)
        wait_for(lambda: all(job.is_finished for job in jobs.all()), 150, "the clean run")
        assert set(jobs.values_list("stage", flat=True)) == {Stage.COMPLETED}
        _clean_counts.update(faces_per_photo(other_user))
    assert len(_clean_counts) == len(batch)
    return dict(_clean_counts)


def upload_batch_and_wait_for_the_first(user, batch):
    for path in batch:
        services.upload(user, upload_of(path))
    jobs = Job.objects.filter(asset__owner=user)
    wait_for(lambda: jobs.filter(stage=Stage.COMPLETED).exists(), 120, "the first photo of the batch")
    assert jobs.filter(stage=Stage.QUEUED).count() >= 2, "the batch finished before the fault: nothing to lose"
    return jobs


def current_states(user) -> dict[int, str]:
    """What a client that (re)connects to ws/jobs/ is sent first: each job's current stage."""
    token = str(RefreshToken.for_user(user).access_token)

    async def connect():
        client = WebsocketCommunicator(application, f"/ws/jobs/?token={token}", headers=[(b"origin", b"http://localhost")])
        connected, _ = await client.connect(timeout=10)
        assert connected
        states = {}
        while not await client.receive_nothing(timeout=0.5):
            event = await client.receive_json_from()
            states[event["job"]] = event["stage"]
        await client.disconnect()
        return states

    return async_to_sync(connect)()


# Only the command heals here: the worker's own sweep must not race it for the lost jobs.
@pytest.mark.worker_env({"SIGHTLINE_WORKER_MAINTENANCE_SECONDS": "3600"})
def test_a_flushall_mid_batch_loses_no_job_once_requeue_runs(worker, clean_counts, user, batch):
    jobs = upload_batch_and_wait_for_the_first(user, batch)
    redis.Redis.from_url(settings.REDIS_URL).flushall()

    # The worker finishes what it holds, then has nothing: the rest is queued in PostgreSQL only.
    # "Holds" includes a job it took from Redis just before the flush and has not started yet
    # (still queued in PostgreSQL, but its own): quiet for 2 s means it has none left.
    active = (Stage.DETECTING, Stage.ENHANCING, Stage.RECOGNIZING)
    quiet_since = [None]

    def quiet_for_two_seconds():
        if jobs.filter(stage__in=active).exists():
            quiet_since[0] = None
        elif quiet_since[0] is None:
            quiet_since[0] = time.monotonic()
        return quiet_since[0] is not None and time.monotonic() - quiet_since[0] >= 2

    wait_for(quiet_for_two_seconds, 120, "the worker to finish what it holds")
    lost = set(jobs.filter(stage=Stage.QUEUED).values_list("pk", flat=True))
    assert lost and django_rq.get_queue("inference").count == 0

    out = io.StringIO()
    call_command("requeue", "--grace", "0", "--verbosity", "2", stdout=out)
    print(out.getvalue())
    requeued = {int(pk) for pk in re.findall(r"\d+", out.getvalue().partition("Re-queued")[2].partition(":")[2])}
    left = {int(pk) for pk in re.findall(r"^  job (\d+): ", out.getvalue(), re.MULTILINE)}
    # Each lost job is queued again, or left to the worker the sweep found still holding it
    # (the quiet spell above is a heuristic); none is left to nobody: all must now finish, and
    # this worker runs no sweep of its own that could heal a wrong decision.
    assert requeued and requeued | left >= lost and not requeued & left
    wait_for(lambda: all(job.is_finished for job in jobs.all()), 200, "the re-queued jobs")

    assert_completed_once(user, clean_counts, len(batch))
    assert set(jobs.values_list("attempts", flat=True)) == {1}  # each photo analysed once
    states = current_states(user)
    assert {job.pk: "completed" for job in jobs} == states


def test_a_redis_restart_without_its_data_is_healed_by_the_workers_maintenance(worker, clean_counts, user, batch):
    server = embedded_redis()
    if server is None:
        pytest.skip("REDIS_URL points at an external Redis: not ours to restart")
    jobs = upload_batch_and_wait_for_the_first(user, batch)

    # Stopped and started empty, as a Redis without persistence (or with its disk lost) comes back.
    server.stop()
    wait_for(lambda: not server.is_running(), 10, "Redis to stop")
    for leftover in (server.directory / "appendonly.aof", server.directory / "appendonlydir", server.directory / "dump.rdb"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    server.start()

    def finished():
        # Time passes: each sweep leaves a job alone for a minute after its last change (it may be
        # between commit and enqueue). Only the worker's own maintenance queues jobs here.
        jobs.exclude(stage__in=TERMINAL_STAGES).update(updated_at=F("updated_at") - timedelta(minutes=2))
        return all(job.is_finished for job in jobs.all())

    wait_for(finished, 200, "the worker's maintenance to re-queue the lost jobs", interval=1)
    assert worker.poll() is None, "the worker died with Redis"
    assert_completed_once(user, clean_counts, len(batch))
    states = current_states(user)
    assert {job.pk: "completed" for job in jobs} == states
