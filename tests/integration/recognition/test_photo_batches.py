"""Photos waiting in the queue go through the worker together (``SIGHTLINE_PHOTO_BATCH``), and
each job still ends as it would alone: its own stages, attempts and faces, failing alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import django_rq
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from recognition import services
from recognition.models import Face, Job, Stage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STAGES = {"uploading", "queued", "detecting", "enhancing", "recognizing"}


def probes(faces_dir: Path, count: int) -> list[Path]:
    return sorted(p for p in (faces_dir / "probes").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:count]


def upload_all(owner, paths: list[Path]) -> list[Job]:
    return [services.upload(owner, SimpleUploadedFile(p.name, p.read_bytes())).job for p in paths]


def faces_of(job: Job) -> list[tuple]:
    return [(tuple(f.box), np.asarray(f.embedding)) for f in Face.objects.filter(asset=job.asset).order_by("id")]


def rq_results(forget: bool = False) -> list[str]:
    """What the rq jobs that ran returned (``forget``: and forget them)."""
    queue = django_rq.get_queue("inference")
    registry = queue.finished_job_registry
    results = []
    for job_id in registry.get_job_ids():
        results.append(queue.fetch_job(job_id).return_value())
        if forget:
            registry.remove(job_id, delete_job=True)
    return results


def test_a_worker_takes_the_waiting_photos_and_each_ends_as_it_would_alone(
    user, other_user, faces_dir, run_jobs, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    paths = probes(faces_dir, 3)
    settings.SIGHTLINE_PHOTO_BATCH = 1
    alone = upload_all(other_user, paths)
    run_jobs()
    assert rq_results(forget=True) == ["completed"] * 3
    settings.SIGHTLINE_PHOTO_BATCH = 8
    together = upload_all(user, paths)
    run_jobs()

    # One rq job ran; it took the two others off the queue.
    assert rq_results() == ["completed (with 2 more photos)"]
    for single, batched in zip(alone, together):
        single.refresh_from_db()
        batched.refresh_from_db()
        assert batched.stage == Stage.COMPLETED, batched.error
        assert batched.attempts == 1
        assert set(batched.timings) == STAGES
        assert all(batched.timings[s]["seconds"] >= 0 for s in STAGES)
        expected, found = faces_of(single), faces_of(batched)
        assert len(found) == len(expected) > 0
        for (box_a, embedding_a), (box_b, embedding_b) in zip(expected, found):
            assert np.allclose(box_a, box_b, atol=0.5)
            assert np.linalg.norm(embedding_a - embedding_b) < 1e-3
        assert batched.asset.tags.count() == single.asset.tags.count() > 0


def test_a_photo_that_cannot_be_read_fails_alone_and_the_others_complete(user, faces_dir, run_jobs, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    jobs = upload_all(user, probes(faces_dir, 3))
    broken = jobs[1]
    # The stored original rots after upload (a disk fault): the worker cannot decode it.
    Path(broken.asset.file.path).write_bytes(b"\xff\xd8\xff\xe0 not a jpeg any more")
    run_jobs()

    for job in jobs:
        job.refresh_from_db()
    assert jobs[1].stage == Stage.FAILED
    assert jobs[1].error and jobs[1].error_code
    assert not Face.objects.filter(asset=broken.asset).exists()
    for job in (jobs[0], jobs[2]):
        assert job.stage == Stage.COMPLETED, job.error
        assert Face.objects.filter(asset=job.asset).exists()


def test_photos_taken_by_a_worker_that_died_are_taken_back_when_its_job_is_retried(
    user, faces_dir, run_jobs, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    leader, *taken = upload_all(user, probes(faces_dir, 3))
    queue = django_rq.get_queue("inference")
    # What a worker that died mid-batch leaves: the others off the queue and naming its rq job,
    # halfway through their stages, with an attempt spent.
    for job in taken:
        queue.remove(job.rq_job_id)
        queue.fetch_job(job.rq_job_id).delete()
        Job.objects.filter(pk=job.pk).update(rq_job_id=leader.rq_job_id, attempts=1)
        job.refresh_from_db()
        job.advance(Stage.DETECTING)
    run_jobs()  # RQ's retry of the leader's rq job

    assert rq_results() == ["completed (with 2 more photos)"]
    for job in (leader, *taken):
        job.refresh_from_db()
        assert job.stage == Stage.COMPLETED, job.error
        assert Face.objects.filter(asset=job.asset).exists()
    assert [job.attempts for job in taken] == [2, 2]


def test_jobs_left_by_a_batch_whose_rq_job_is_gone_are_queued_again_alone(user, faces_dir, run_jobs, settings,
                                                                           tmp_path):
    settings.MEDIA_ROOT = tmp_path
    leader, taken = upload_all(user, probes(faces_dir, 2))
    queue = django_rq.get_queue("inference")
    queue.remove(taken.rq_job_id)
    queue.fetch_job(taken.rq_job_id).delete()
    Job.objects.filter(pk=taken.pk).update(rq_job_id=leader.rq_job_id, attempts=1)
    queue.remove(leader.rq_job_id)
    queue.fetch_job(leader.rq_job_id).delete()  # Redis lost the batch's rq job

    recovery = services.recover_stuck_jobs(grace=timedelta(0))
    assert sorted(recovery.requeued) == sorted([leader.pk, taken.pk])
    run_jobs()
    for job in (leader, taken):
        job.refresh_from_db()
        assert job.stage == Stage.COMPLETED, job.error


def test_a_retry_no_scheduler_moves_is_queued_again_by_the_sweep(user, settings, tmp_path):
    """A retry waits in RQ's schedule until a scheduler moves it; if none does (no worker runs
    one, or a dead one holds its lock), the job would wait forever."""
    from datetime import datetime, timezone

    from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

    settings.MEDIA_ROOT = tmp_path
    overdue, waiting = (services.upload(user, upload_of(jpeg_bytes(seed=seed), f"{seed}.jpg")).job for seed in (1, 2))
    queue = django_rq.get_queue("inference")
    now = datetime.now(timezone.utc)
    for job, due in ((overdue, now - timedelta(minutes=5)), (waiting, now + timedelta(seconds=30))):
        queue.remove(job.rq_job_id)
        queue.scheduled_job_registry.schedule(queue.fetch_job(job.rq_job_id), due)
        queue.fetch_job(job.rq_job_id).set_status("scheduled")

    recovery = services.recover_stuck_jobs(grace=timedelta(seconds=60))
    assert recovery.requeued == [overdue.pk]
    overdue.refresh_from_db()
    assert queue.fetch_job(overdue.rq_job_id).get_status() == "queued"


def test_photos_a_finished_batch_could_not_hand_back_are_all_queued_in_one_sweep(user, settings, tmp_path):
    """The database went away as a batch ended: its own job completed, the photos it took could
    not be handed back and still name its finished rq job. One sweep queues every one of them,
    with no grace to wait out (deleting the shared rq job for the first must not hide it from
    the others)."""
    from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

    settings.MEDIA_ROOT = tmp_path
    leader, *taken = (services.upload(user, upload_of(jpeg_bytes(seed=seed), f"{seed}.jpg")).job for seed in (1, 2, 3))
    queue = django_rq.get_queue("inference")
    batch = queue.fetch_job(leader.rq_job_id)
    queue.remove(batch.id)
    for job in taken:
        queue.remove(job.rq_job_id)
        queue.fetch_job(job.rq_job_id).delete()
    Job.objects.filter(pk__in=[job.pk for job in taken]).update(rq_job_id=batch.id, stage=Stage.RECOGNIZING, attempts=1)
    leader.advance(Stage.COMPLETED)
    batch.set_status("finished")

    recovery = services.recover_stuck_jobs(grace=timedelta(minutes=10))  # every row changed just now
    assert sorted(recovery.requeued) == sorted(job.pk for job in taken)
    assert queue.fetch_job(batch.id) is None  # the finished batch's record went once all were decided
    for job in taken:
        job.refresh_from_db()
        assert job.stage == Stage.QUEUED and queue.fetch_job(job.rq_job_id).get_status() == "queued"


def test_an_idle_worker_sweeps_within_the_maintenance_interval(settings):
    """manage.py rqworker always passes --worker-ttl 420: an idle worker blocked 405 s on Redis
    between sweeps, whatever SIGHTLINE_WORKER_MAINTENANCE_SECONDS said."""
    from recognition.worker import SightlineWorker

    settings.SIGHTLINE_WORKER_MAINTENANCE_SECONDS = 60
    queue = django_rq.get_queue("inference")
    worker = SightlineWorker([queue], connection=queue.connection, worker_ttl=420)
    assert worker.dequeue_timeout <= 60 and worker.maintenance_interval == 60
    assert SightlineWorker([queue], connection=queue.connection).dequeue_timeout <= 60


def test_a_photo_the_worker_could_not_take_goes_back_to_the_queue(user, run_jobs, settings, tmp_path, monkeypatch):
    """The database went away between taking a waiting photo from Redis and naming the taker on
    its row: the photo goes back to the queue, not into an rq job "queued" in no queue."""
    from django.db import OperationalError
    from django.db.models import QuerySet
    from rq import SimpleWorker

    from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

    settings.MEDIA_ROOT = tmp_path
    leader, waiting = (services.upload(user, upload_of(jpeg_bytes(seed=seed), f"{seed}.jpg")).job for seed in (1, 2))
    update = QuerySet.update

    def database_gone_when_naming_the_taker(self, **fields):
        if set(fields) == {"rq_job_id"}:
            raise OperationalError("the database system is shutting down")
        return update(self, **fields)

    monkeypatch.setattr(QuerySet, "update", database_gone_when_naming_the_taker)
    queue = django_rq.get_queue("inference")
    SimpleWorker([queue], connection=queue.connection).work(burst=True, max_jobs=1, with_scheduler=False)
    assert waiting.rq_job_id in queue.get_job_ids()  # back, at the front, for any worker
    monkeypatch.undo()
    run_jobs()
    for job in (leader, waiting):
        job.refresh_from_db()
    assert waiting.stage == Stage.COMPLETED, waiting.error


def test_a_photo_taken_out_of_the_queue_by_a_worker_that_died_is_queued_again(user, run_jobs, settings, tmp_path):
    """SIGKILL between a worker taking a waiting photo's rq job out of the queue and naming
    itself on the photo's row: the rq job is "queued" in no queue and nobody would run it. The
    sweep queues it again once the row has not changed for the grace, and not before (a live
    worker names itself within milliseconds)."""
    from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

    settings.MEDIA_ROOT = tmp_path
    waiting, lost = (services.upload(user, upload_of(jpeg_bytes(seed=seed), f"{seed}.jpg")).job for seed in (1, 2))
    queue = django_rq.get_queue("inference")
    assert queue.remove(lost.rq_job_id)  # what the taker did before it died
    assert queue.fetch_job(lost.rq_job_id).get_status() == "queued"

    assert services.recover_stuck_jobs(grace=timedelta(seconds=60)).requeued == []  # maybe being taken
    Job.objects.filter(pk=lost.pk).update(updated_at=lost.updated_at - timedelta(minutes=5))
    recovery = services.recover_stuck_jobs(grace=timedelta(seconds=60))
    assert recovery.requeued == [lost.pk]  # the one still in the queue is left to its worker
    lost.refresh_from_db()
    assert lost.rq_job_id in queue.get_job_ids()
    run_jobs()
    for job in (waiting, lost):
        job.refresh_from_db()
        assert job.stage == Stage.COMPLETED, job.error
