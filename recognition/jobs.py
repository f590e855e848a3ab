"""django-rq entry points. Thin: load, call the pipeline or a service, decide retry or failure.

Failure policy:
- bad input (a file that passed upload but cannot be decoded, a video without frames: a
  ``Refusal`` from media's validation) fails the job at once with its reason and code;
- a job that runs past ``SIGHTLINE_JOB_TIMEOUT_SECONDS`` fails with code ``timeout``;
- transient errors (database or Redis unavailable) are raised while RQ has retries left, so RQ
  re-runs the job with backoff; on the last attempt the job fails with the reason;
- a worker that dies mid-job leaves an rq job in its StartedJobRegistry; RQ's registry clean-up
  (and ``recover_stuck_jobs``) re-queues it, and the pipeline's attempt check makes the re-run
  idempotent;
- anything else is a bug: the job fails with the exception's class, and the log has the trace.
"""

from __future__ import annotations

import functools
import logging
import uuid

import django_rq
import redis
import rq
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.models import F
from rq import Callback, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.timeouts import JobTimeoutException

from config.refusals import Refusal
from media.models import Asset
from media.validation import RejectedUpload
from recognition.models import Job, Stage

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)


def retry_policy() -> Retry:
    intervals = settings.SIGHTLINE_JOB_RETRY_INTERVALS
    return Retry(max=len(intervals), interval=list(intervals))


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def rq_queue(name: str) -> rq.Queue:
    """The rq queue ``name`` on this process's one Redis connection pool: django_rq's own
    ``get_queue`` connects anew on every call, a round of TCP set-up in every upload."""
    return django_rq.get_queue(name, connection=_redis(settings.RQ_QUEUES[name]["URL"]))


def new_rq_job_id() -> str:
    return uuid.uuid4().hex


def enqueue_processing(job: Job, rq_job_id: str | None = None) -> None:
    """Queue ``process_asset`` for ``job`` (call after the job row is committed), as the rq job
    ``rq_job_id`` when the row already names it, else as a new one that the row is told about."""
    rq_job = rq_queue("inference").enqueue(
        process_asset,
        job.pk,
        job_id=rq_job_id or new_rq_job_id(),
        retry=retry_policy(),
        job_timeout=settings.SIGHTLINE_JOB_TIMEOUT_SECONDS,
        on_failure=Callback(mark_failed_if_final),
        description=f"process asset {job.asset_id} (job {job.pk})",
    )
    if job.rq_job_id != rq_job.id:
        Job.objects.filter(pk=job.pk).update(rq_job_id=rq_job.id)
        job.rq_job_id = rq_job.id


def _retries_left() -> int:
    current = get_current_job()
    return (current.retries_left or 0) if current is not None else 0


def process_asset(job_id: int) -> str:
    """Process the job, and with it (a photo's) up to ``SIGHTLINE_PHOTO_BATCH - 1`` other photos
    waiting in the queue (``_take_waiting_photos``): one engine batch, each job settled alone."""
    from recognition import pipeline  # it loads torch: workers only, not the web processes that enqueue

    job = Job.objects.select_related("asset").filter(pk=job_id).first()
    if job is None:
        return "job deleted"  # its asset was deleted while queued: nothing to do
    if job.is_finished:
        return f"already {job.stage}"
    Job.objects.filter(pk=job_id).update(attempts=F("attempts") + 1)
    job.refresh_from_db(fields=["attempts"])
    if job.asset.kind == Asset.Kind.VIDEO:
        try:
            pipeline.run_video(job)
        except JobTimeoutException:
            return _time_out(job)
        except Exception as exc:
            return _settle(job, exc)
        return "completed"

    others = _take_waiting_photos(job)
    try:
        problems = pipeline.run_photos([job, *others])
    except JobTimeoutException:
        _hand_back(others)
        return _time_out(job)
    except Exception as exc:  # the batch as a whole broke: this job's problem, the others go back
        _hand_back(others)
        return _settle(job, exc)
    for other in others:
        if problems[other.pk] is not None:
            _settle_taken(other, problems[other.pk])
    outcome = _settle(job, problems[job.pk]) if problems[job.pk] is not None else "completed"
    return outcome if not others else f"{outcome} (with {len(others)} more photos)"


def _settle(job: Job, exc: Exception) -> str:
    """What a problem means for the job: fail it with its reason, or raise for RQ to retry."""
    from recognition import pipeline

    job_id = job.pk
    if isinstance(exc, pipeline.StaleRun):
        logger.info("stale run dropped", extra={"job": job_id, "reason": str(exc)})
        return "superseded"
    if isinstance(exc, Refusal):
        job.fail(exc.message, exc.code)
        return f"failed: {exc.code}"
    if isinstance(exc, TRANSIENT_ERRORS):
        if _retries_left() > 0:
            logger.warning("transient error, RQ will retry", extra={"job": job_id}, exc_info=exc)
            raise exc
        _fail_safely(job_id, f"Gave up after {job.attempts} attempts: {exc.__class__.__name__}", "unavailable")
        return "failed: unavailable"
    logger.error("job crashed", extra={"job": job_id}, exc_info=exc)
    _fail_safely(job_id, f"Internal error while processing ({exc.__class__.__name__}).", "internal_error")
    return "failed: internal_error"


def _time_out(job: Job) -> str:
    limit = settings.SIGHTLINE_JOB_TIMEOUT_SECONDS
    _fail_safely(job.pk, f"Processing took longer than the limit of {limit} s and was stopped.", "timeout")
    return "failed: timeout"


# --- photos processed together ---------------------------------------------------------------
# A worker that starts a photo's job also takes other photos' jobs still waiting in the queue:
# each is removed from the queue's list (atomically, so two workers never take the same one)
# and its row then names the running rq job (``rq_job_id``). Everything that follows keeps the
# usual guarantees: if the worker dies, RQ retries the running rq job, which takes back the
# jobs naming it; once that rq job has failed or finished, ``services.recover_stuck_jobs``
# queues any of them left unfinished again, alone.


def _take_waiting_photos(job: Job) -> list[Job]:
    current = get_current_job()
    limit = settings.SIGHTLINE_PHOTO_BATCH - 1
    if current is None or limit == 0:
        return []  # called directly (tests, commands), or one photo at a time
    # Jobs this rq job took before a crash first: nobody else will run them while it is retried.
    taken = list(
        Job.objects.active().filter(rq_job_id=current.id).exclude(pk=job.pk)
        .order_by("created_at", "pk").values_list("pk", flat=True)[:limit]
    )
    queue = django_rq.get_queue(current.origin)
    waiting = (
        Job.objects.filter(stage=Stage.QUEUED, asset__kind=Asset.Kind.IMAGE).exclude(rq_job_id="")
        .exclude(pk=job.pk).order_by("created_at", "pk").values_list("pk", "rq_job_id")
    )
    for pk, rq_job_id in waiting[: 2 * limit]:
        if len(taken) >= limit:
            break
        if not queue.remove(rq_job_id):
            continue  # another worker started it meanwhile
        try:
            Job.objects.filter(pk=pk).update(rq_job_id=current.id)  # at once: a crash must find it named
        except BaseException:
            # Not taken after all (the database went away): back to the queue, or its rq job
            # would stay "queued" in no queue, alive to the sweep and run by nobody.
            queue.push_job_id(rq_job_id, at_front=True)
            raise
        _delete_rq_job(rq_job_id, queue.connection)
        taken.append(pk)
    if not taken:
        return []
    Job.objects.filter(pk__in=taken).update(attempts=F("attempts") + 1)
    return list(Job.objects.active().select_related("asset").filter(pk__in=taken).order_by("created_at", "pk"))


def _delete_rq_job(rq_job_id: str, connection) -> None:
    try:
        RQJob.fetch(rq_job_id, connection=connection).delete(remove_from_queue=False)
    except NoSuchJobError:
        pass


def _settle_taken(job: Job, exc: Exception) -> None:
    """A taken job's problem: as its own rq job would settle it, except that a transient error
    queues it again alone (it has no rq job of its own to retry)."""
    if isinstance(exc, TRANSIENT_ERRORS):
        _hand_back([job])
        return
    _settle(job, exc)


def _hand_back(taken: list[Job]) -> None:
    """Queue unfinished taken jobs again, each alone. Should Redis be down, the sweep
    (``recover_stuck_jobs``) finds them later: their rq job will have failed."""
    for job in taken:
        try:
            job.refresh_from_db(fields=["stage"])
            if not job.is_finished:
                job.advance(Stage.QUEUED)
                enqueue_processing(job)
        except (*TRANSIENT_ERRORS, DatabaseError):
            logger.warning("could not queue a taken job again", extra={"job": job.pk}, exc_info=True)


def _fail_safely(job_id: int, error: str, code: str) -> None:
    job = Job.objects.select_related("asset").filter(pk=job_id).first()
    if job is not None and not job.is_finished:
        job.fail(error, code)


def mark_failed_if_final(rq_job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback. It also runs for abandoned jobs (dead worker); RQ calls it before
    deciding on a retry, so only a job without retries left is failed here."""
    if rq_job.retries_left:
        return
    job_id = rq_job.args[0] if rq_job.args else None
    if job_id is None:
        return
    reason = "The worker processing this file stopped" if exc_type and exc_type.__name__ == "AbandonedJobError" else (
        f"Processing failed ({exc_type.__name__ if exc_type else 'unknown error'})"
    )
    try:
        _fail_safely(job_id, f"{reason}; no retries left.", "worker_lost")
    except DatabaseError:
        logger.exception("could not mark job failed", extra={"job": job_id})


# --- realtime: the model half of requests a user waits on (services.run_realtime) ----------
# These return plain data (no rows written): the web process matches, stores and answers.


def _faces_payload(faces) -> list[dict]:
    return [
        {
            "box": [round(float(v), 2) for v in face.box],
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
            "score": float(face.score),
            "quality": float(face.quality),
            "embedding": [float(v) for v in face.embedding],
        }
        for face in faces
    ]


def analyze_photo_bytes(data: bytes) -> dict:
    """Faces of one uploaded photo (biggest first), or the reason it was refused."""
    import io

    from media import services as media_services
    from recognition import inference

    try:
        image = media_services.decode_uploaded_image(io.BytesIO(data))
    except RejectedUpload as exc:
        return {"rejected": {"message": exc.message, "code": exc.code, "status": exc.status}}
    engine = inference.face_engine()
    return {"faces": _faces_payload(engine.analyze([image])[0]), "model_version": engine.model_version}


def analyze_stored_photo(asset_id: int) -> dict:
    """Faces of a stored photo, for enrolment."""
    from media import services as media_services
    from media.models import Asset
    from recognition import inference

    asset = Asset.objects.get(pk=asset_id)
    try:
        image = media_services.load_image(asset)
    except RejectedUpload as exc:
        return {"rejected": {"message": exc.message, "code": exc.code, "status": exc.status}}
    engine = inference.face_engine()
    return {"faces": _faces_payload(engine.analyze([image])[0]), "model_version": engine.model_version}


# --- clustering ----------------------------------------------------------------------------


def recluster_everyone() -> int:
    """The nightly run (``recognition.cron``): one full recluster job per owner with faces, so
    one owner's many faces never hold up another's."""
    from recognition.models import Face

    queue = django_rq.get_queue("default")
    owners = list(Face.objects.values_list("owner_id", flat=True).distinct().order_by("owner_id"))
    for owner_id in owners:
        queue.enqueue(recluster_owner, owner_id, True, job_timeout=settings.SIGHTLINE_JOB_TIMEOUT_SECONDS,
                      description=f"recluster the faces of user {owner_id}")
    return len(owners)


def recluster_owner(owner_id: int, full: bool = True) -> dict:
    from dataclasses import asdict

    from recognition.people import clustering

    return asdict(clustering.recluster(owner_id, full=full))
