"""Transient failures (the database or Redis going away) are retried by RQ; bad input is not.

The outage is simulated at the pipeline's door, the one place a test can make PostgreSQL
"unavailable" for exactly one attempt; everything else (queue, worker, retry, rows) is real.
"""

import pytest
from django.db import OperationalError

from recognition import pipeline, services
from recognition.models import Job, Stage
from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def photo_job(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SIGHTLINE_JOB_RETRY_INTERVALS = [0, 0]  # retry at once: no scheduler in a burst worker
    return services.upload(user, upload_of(jpeg_bytes(), "photo.jpg")).job


def failing_first(times: int, monkeypatch):
    real_run = pipeline.run_photos
    calls = {"n": 0}

    def run_photos(jobs):
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("server closed the connection unexpectedly")
        return real_run(jobs)

    monkeypatch.setattr(pipeline, "run_photos", run_photos)
    return calls


def test_a_transient_error_is_retried_and_the_job_completes(photo_job, run_jobs, monkeypatch):
    calls = failing_first(1, monkeypatch)
    run_jobs()
    job = Job.objects.get(pk=photo_job.pk)
    assert job.stage == Stage.COMPLETED, job.error
    assert (calls["n"], job.attempts) == (2, 2)


def test_a_job_that_keeps_failing_transiently_ends_failed_with_the_reason(photo_job, run_jobs, monkeypatch):
    calls = failing_first(10, monkeypatch)
    run_jobs()
    job = Job.objects.get(pk=photo_job.pk)
    assert job.stage == Stage.FAILED
    assert calls["n"] == 3  # the first try and both retries
    assert job.error_code == "unavailable"
    assert "OperationalError" in job.error


def test_a_job_past_its_time_limit_fails_as_a_timeout(photo_job, run_jobs, monkeypatch, settings):
    """RQ's own alarm stops it; the job says so instead of 'internal error'."""
    import time

    settings.SIGHTLINE_JOB_TIMEOUT_SECONDS = 1
    Job.objects.filter(pk=photo_job.pk).update(stage=Stage.FAILED)  # drop the job queued on upload
    job = services.rerun_asset(photo_job.asset)  # queued again, under the 1 s limit
    monkeypatch.setattr(pipeline, "run_photos", lambda jobs: time.sleep(5))
    run_jobs()
    job.refresh_from_db()
    assert (job.stage, job.error_code) == (Stage.FAILED, "timeout")
    assert "1 s" in job.error


def test_a_bug_is_an_internal_error_whose_words_stay_in_the_log(photo_job, run_jobs, monkeypatch):
    """A ValueError deep in a library is no judgement on the user's file."""
    def run_photos(jobs):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(pipeline, "run_photos", run_photos)
    run_jobs()
    job = Job.objects.get(pk=photo_job.pk)
    assert (job.stage, job.error_code) == (Stage.FAILED, "internal_error")
    assert "broadcast" not in job.error


def test_a_file_that_no_longer_decodes_fails_with_the_refusals_reason(photo_job, run_jobs, monkeypatch):
    from media.validation import RejectedUpload

    def run_photos(jobs):
        raise RejectedUpload("The image data is truncated.", "corrupt")

    monkeypatch.setattr(pipeline, "run_photos", run_photos)
    run_jobs()
    job = Job.objects.get(pk=photo_job.pk)
    assert (job.stage, job.error_code, job.error) == (Stage.FAILED, "corrupt", "The image data is truncated.")
