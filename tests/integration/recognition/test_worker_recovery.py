"""A worker killed mid-job: the job is picked up again and completes once, without duplicates."""

import signal
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from recognition import services
from recognition.models import Face, Job, Stage
from tests.servers import start_worker_process, stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_job_completes_once_on_a_new_worker(user, faces_dir, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    video = faces_dir / "videos" / "facenet_video.mp4"
    outcome = services.upload(user, SimpleUploadedFile(video.name, video.read_bytes()))
    job_id = outcome.job.pk
    env = {"MEDIA_ROOT": str(tmp_path), "SIGHTLINE_VIDEO_FRAME_BATCH": "1", "SIGHTLINE_VIDEO_FPS": "2"}

    first = start_worker_process("inference", extra_env=env)
    try:
        wait_for(lambda: Job.objects.get(pk=job_id).stage == Stage.DETECTING, 120, "the job to start detecting")
    finally:
        stop_process(first, sig=signal.SIGKILL)  # the worker and its work-horse, no goodbye
    assert Job.objects.get(pk=job_id).stage == Stage.DETECTING  # stuck, as far as anyone knows

    second = start_worker_process("inference", extra_env=env)
    try:
        wait_for(lambda: Job.objects.get(pk=job_id).is_finished, 240, "the job to finish on the new worker")
    finally:
        stop_process(second)
    job = Job.objects.get(pk=job_id)
    assert job.stage == Stage.COMPLETED, job.error
    assert job.attempts == 2
    faces = Face.objects.filter(asset=outcome.asset)
    assert faces.count() > 0
    assert faces.exclude(job=job).count() == 0
    keys = [(f.frame_index, tuple(f.box)) for f in faces]
    assert len(keys) == len(set(keys)), "duplicate faces after the re-run"
