"""What views, commands and the admin call: uploads that start jobs, re-runs, recovery,
and the synchronous requests that a realtime worker answers while the caller waits."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from datetime import timedelta

import django_rq
import psutil
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.results import Result
from rq.worker import Worker

from config.refusals import Refusal
from media import services as media_services
from media.models import Asset
from recognition import jobs
from recognition.models import Job, Stage

logger = logging.getLogger(__name__)


# --- uploads and jobs ----------------------------------------------------------------------


@dataclass
class UploadOutcome:
    asset: object
    job: Job | None
    created: bool


def upload(owner, uploaded_file, original_name: str | None = None) -> UploadOutcome:
    """Store the file (or find the owner's identical one) and start processing new files.

    Raises ``media.validation.RejectedUpload`` for files we refuse.
    """
    result = None
    received_at = timezone.now()
    try:
        with transaction.atomic():
            result = media_services.ingest_upload(owner, uploaded_file, original_name)
            if not result.created:
                job = ensure_processing(result.asset)
                if job is not None:
                    return UploadOutcome(result.asset, job, False)
                # Deleted under us (a refused enrolment of the same bytes): store it anew.
                result = media_services.ingest_upload(owner, uploaded_file, original_name)
            job = start_processing(result.asset, received_at=received_at)
    except BaseException:
        if result is not None and result.created:
            media_services.discard_files(result.asset)  # its row was rolled back
        raise
    return UploadOutcome(result.asset, job, True)


def start_processing(asset, received_at=None) -> Job:
    """A new ``queued`` job for ``asset``, enqueued once the surrounding transaction commits.

    ``received_at``: when the upload of a new file began; its ``uploading`` stage (receiving,
    validating, storing) is timed from then to now. A re-run uploads nothing and starts queued.
    """
    # Queued in the database before it is in Redis: should the enqueue after commit fail, the
    # stuck-job sweep finds a queued job with no rq job and enqueues it. The rq job's id is
    # chosen now, so the row needs no second write once it is enqueued.
    job = Job.create_queued(asset, uploading_since=received_at, rq_job_id=jobs.new_rq_job_id())
    transaction.on_commit(lambda: jobs.enqueue_processing(job, rq_job_id=job.rq_job_id))
    return job


def ensure_processing(asset) -> Job | None:
    """The asset's latest job, or a new one if it has none yet (a photo stored a moment ago by
    an enrolment that is still looking at its faces). None if the asset is gone.

    The asset's row lock makes this and ``discard_unclaimed`` take turns.
    """
    with transaction.atomic():
        if not Asset.objects.select_for_update().filter(pk=asset.pk).exists():
            return None
        return Job.objects.latest_for(asset) or start_processing(asset)


def discard_unclaimed(asset) -> bool:
    """Delete an asset stored for an enrolment that was refused, unless an upload of the same
    bytes has claimed it meanwhile (it has a job then). True if deleted."""
    with transaction.atomic():
        locked = Asset.objects.select_for_update().filter(pk=asset.pk).first()
        if locked is None or Job.objects.filter(asset=locked).exists():
            return False
        locked.delete()
        return True


class JobInProgress(Refusal):
    """A re-run asked for while the asset still has a job that has not ended."""

    code = "job_in_progress"
    status = 409

    def __init__(self, running: Job):
        super().__init__(f"{running.asset.original_name} is still being processed; re-run it once that run ends.")
        self.running = running


def rerun_asset(asset: Asset) -> Job:
    """Process the asset again with a new job (earlier ones stay as history).

    Raises JobInProgress while a job of that asset is still active: two would race on its faces.
    """
    with transaction.atomic():
        # Lock the asset row so two simultaneous requests cannot both pass the check.
        Asset.objects.select_for_update().get(pk=asset.pk)
        running = Job.objects.active().filter(asset=asset).select_related("asset").first()
        if running is not None:
            raise JobInProgress(running)
        return start_processing(asset)


# --- stuck jobs ----------------------------------------------------------------------------


@dataclass
class Recovery:
    requeued: list[int]
    failed: list[int]
    # Unfinished jobs the sweep judged alive, and why (what an operator asks of "requeue").
    left: dict[int, str] = field(default_factory=dict)

    # What "left alone" means, in the words the command and the admin both say it with.
    LEFT_MEANING = "a worker still has them, or they changed within the grace and may be about to be queued"


def max_attempts() -> int:
    return len(settings.SIGHTLINE_JOB_RETRY_INTERVALS) + 1


def _worker_is_dead(rq_job: RQJob) -> bool:
    """The worker that started ``rq_job`` is gone: no longer registered, or a process of this
    host that no longer exists (a SIGKILLed worker stays registered until its TTL runs out)."""
    if not rq_job.worker_name:
        return True
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + rq_job.worker_name, connection=rq_job.connection)
    if worker is None:
        return True
    return worker.hostname == socket.gethostname() and worker.pid is not None and not psutil.pid_exists(worker.pid)


def _retry_overdue(rq_job: RQJob, cutoff) -> bool:
    """A retry whose time passed more than the grace ago: no scheduler is moving it (none runs,
    or its lock is held by a scheduler that died with its worker), so no worker will run it."""
    try:
        due = django_rq.get_queue(rq_job.origin).scheduled_job_registry.get_scheduled_time(rq_job)
    except NoSuchJobError:
        return True  # SCHEDULED, but in no schedule
    return due < cutoff


class _QueueLists:
    """The rq job ids in each queue's list, read once per sweep (a lookup per job would scan
    the list again for each of a long backlog)."""

    def __init__(self):
        self._ids: dict[str, set[str]] = {}

    def holds(self, rq_job: RQJob) -> bool:
        if rq_job.origin not in self._ids:
            self._ids[rq_job.origin] = set(django_rq.get_queue(rq_job.origin).get_job_ids())
        return rq_job.id in self._ids[rq_job.origin]


def _alive(job: Job, rq_job: RQJob | None, status, cutoff, listed: _QueueLists) -> str:
    """Why a worker will still run ``job`` (its rq job's state), or "" when none will."""
    if status == JobStatus.QUEUED:
        # "Queued" in RQ yet in no queue's list: a worker took it out to run with its batch
        # and died before naming itself on the row, which has not changed since.
        if job.updated_at > cutoff or listed.holds(rq_job):
            return f"waiting in the queue (rq job {rq_job.id})"
    elif status == JobStatus.DEFERRED:
        return f"deferred (rq job {rq_job.id})"
    elif status == JobStatus.SCHEDULED:
        if not _retry_overdue(rq_job, cutoff):
            return f"retry scheduled (rq job {rq_job.id})"
    elif status == JobStatus.STARTED and not _worker_is_dead(rq_job):
        return f"running on worker {rq_job.worker_name} (rq job {rq_job.id})"
    return ""


def _rq_job(job: Job) -> RQJob | None:
    if not job.rq_job_id:
        return None
    try:
        return RQJob.fetch(job.rq_job_id, connection=django_rq.get_connection("inference"))
    except NoSuchJobError:
        return None


def recover_stuck_jobs(grace: timedelta = timedelta(seconds=60), include_failed: bool = False) -> Recovery:
    """Find jobs that no worker will finish and queue them again (or fail them for good).

    Stuck means: its rq job is gone, failed, started by a worker that has died, or "queued" in
    no queue. A job that changed within ``grace`` is left alone when it has no rq job (it may be
    between commit and enqueue) or its rq job is out of the queue (a worker may be taking it).
    ``include_failed`` also re-queues jobs that ended ``failed`` (the operator's choice).
    """
    recovery = Recovery([], [])
    # One sweep at a time across all workers, or two would queue the same job twice.
    lock = django_rq.get_connection("inference").lock("sightline:recover-stuck-jobs", timeout=120)
    if not lock.acquire(blocking=False):
        return recovery
    try:
        _sweep(recovery, grace, include_failed)
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass  # Redis lost the lock meanwhile (flushed, restarted): nothing to release
    if recovery.requeued or recovery.failed:
        logger.warning("recovered stuck jobs", extra={"requeued": recovery.requeued, "failed": recovery.failed})
    return recovery


def _sweep(recovery: Recovery, grace: timedelta, include_failed: bool) -> None:
    cutoff = timezone.now() - grace
    candidates = Job.objects.active()
    if include_failed:
        # Only an asset's latest job: an older failure that was re-run already is history.
        newer = Job.objects.filter(asset=OuterRef("asset"), created_at__gt=OuterRef("created_at"))
        candidates = candidates | Job.objects.filter(stage=Stage.FAILED).exclude(Exists(newer))
    # An rq job that ran a batch is named by each photo it took: deleted once all are decided,
    # or the second photo would find it gone and wait out the grace as if just committed.
    dead: dict[str, RQJob] = {}
    listed = _QueueLists()
    for job in candidates.select_related("asset"):
        rq_job = dead.get(job.rq_job_id) or _rq_job(job)
        status = rq_job.get_status(refresh=True) if rq_job is not None else None
        if job.stage != Stage.FAILED:
            if rq_job is None and job.updated_at > cutoff:
                recovery.left[job.pk] = "changed within the grace, not queued yet"
                continue  # maybe committed a moment ago and about to be queued
            alive = _alive(job, rq_job, status, cutoff, listed)
            if alive:
                recovery.left[job.pk] = alive
                continue
        if rq_job is not None:
            dead[rq_job.id] = rq_job
        if job.stage != Stage.FAILED and job.attempts >= max_attempts():
            job.fail(f"Stopped after {job.attempts} attempts: the worker kept stopping mid-job.", "worker_lost")
            recovery.failed.append(job.pk)
            continue
        if job.stage == Stage.FAILED:
            try:
                rerun_asset(job.asset)
            except JobInProgress:
                continue  # someone re-ran it meanwhile
        else:
            if job.stage != Stage.QUEUED:
                job.advance(Stage.QUEUED)  # waiting for a worker again
            jobs.enqueue_processing(job)
        recovery.requeued.append(job.pk)
    for rq_job in dead.values():
        rq_job.delete(remove_from_queue=True)


# --- realtime requests ---------------------------------------------------------------------


class RealtimeUnavailable(Refusal):
    """No realtime worker answered in time."""

    code = "realtime_unavailable"
    status = 503


class RealtimeFailed(Refusal):
    """The realtime job raised; the message is safe to show."""

    code = "realtime_failed"
    status = 502


def run_realtime(func, *args, timeout: float | None = None):
    """Run ``func(*args)`` on the realtime queue and wait for its return value."""
    timeout = timeout or settings.SIGHTLINE_REALTIME_TIMEOUT_SECONDS
    queue = jobs.rq_queue("realtime")
    # ttl: a request nobody picked up in time is dropped, not run after the caller gave up.
    rq_job = queue.enqueue(func, *args, ttl=int(timeout) + 1, result_ttl=300, failure_ttl=300, job_timeout=int(timeout) * 4)
    result = rq_job.latest_result(timeout=int(timeout))
    if result is None:
        rq_job.cancel()
        raise RealtimeUnavailable(
            f"No recognition worker answered within {int(timeout)} s. Try again shortly; "
            "operators: check that an rq worker serves the 'realtime' queue."
        )
    if result.type != Result.Type.SUCCESSFUL:
        logger.error("realtime job failed", extra={"rq_job": rq_job.id, "error": result.exc_string})
        raise RealtimeFailed("The recognition worker failed on this request.")
    return result.return_value


def analyze_on_realtime_worker(asset) -> dict:
    """A stored photo's faces, found by the realtime worker while the caller waits (enrolment)."""
    return run_realtime(jobs.analyze_stored_photo, asset.pk)
