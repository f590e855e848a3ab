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
    real_run = pipeline.run
    calls = {"n": 0}

    def run(job):
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("server closed the connection unexpectedly")
        return real_run(job)

    monkeypatch.setattr(pipeline, "run", run)
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
