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

import logging

import django_rq
import redis
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.models import F
from rq import Callback, Retry, get_current_job
from rq.timeouts import JobTimeoutException

from config.refusals import Refusal
from media.validation import RejectedUpload
from recognition import pipeline
from recognition.models import Job

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)


def retry_policy() -> Retry:
    intervals = settings.SIGHTLINE_JOB_RETRY_INTERVALS
    return Retry(max=len(intervals), interval=list(intervals))


def enqueue_processing(job: Job) -> None:
    """Queue ``process_asset`` for ``job`` (call after the job row is committed)."""
    queue = django_rq.get_queue("inference")
    rq_job = queue.enqueue(
        process_asset,
        job.pk,
        retry=retry_policy(),
        job_timeout=settings.SIGHTLINE_JOB_TIMEOUT_SECONDS,
        on_failure=Callback(mark_failed_if_final),
        description=f"process asset {job.asset_id} (job {job.pk})",
    )
    Job.objects.filter(pk=job.pk).update(rq_job_id=rq_job.id)
    job.rq_job_id = rq_job.id


def _retries_left() -> int:
    current = get_current_job()
    return (current.retries_left or 0) if current is not None else 0


def process_asset(job_id: int) -> str:
    job = Job.objects.select_related("asset").filter(pk=job_id).first()
    if job is None:
        return "job deleted"  # its asset was deleted while queued: nothing to do
    if job.is_finished:
        return f"already {job.stage}"
    Job.objects.filter(pk=job_id).update(attempts=F("attempts") + 1)
    job.refresh_from_db(fields=["attempts"])
    try:
        pipeline.run(job)
    except pipeline.StaleRun as exc:
        logger.info("stale run dropped", extra={"job": job_id, "reason": str(exc)})
        return "superseded"
    except Refusal as refusal:
        job.fail(refusal.message, refusal.code)
        return f"failed: {refusal.code}"
    except JobTimeoutException:
        limit = settings.SIGHTLINE_JOB_TIMEOUT_SECONDS
        _fail_safely(job_id, f"Processing took longer than the limit of {limit} s and was stopped.", "timeout")
        return "failed: timeout"
    except TRANSIENT_ERRORS as exc:
        if _retries_left() > 0:
            logger.warning("transient error, RQ will retry", extra={"job": job_id}, exc_info=True)
            raise
        _fail_safely(job_id, f"Gave up after {job.attempts} attempts: {exc.__class__.__name__}", "unavailable")
        return "failed: unavailable"
    except Exception as exc:
        logger.exception("job crashed", extra={"job": job_id})
        _fail_safely(job_id, f"Internal error while processing ({exc.__class__.__name__}).", "internal_error")
        return "failed: internal_error"
    return "completed"


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
