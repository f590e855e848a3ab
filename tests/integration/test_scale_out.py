"""Scale-out: separate worker processes share one PostgreSQL, one Redis and S3-compatible storage.

Two inference workers and a web server run as their own processes, as on separate machines
(nothing shared but the three servers' URLs, the secret key and the bucket); the S3 server is
moto's server mode, the one stand-in here (for the outside world's object store). A batch of
photos uploaded through the API is processed with every job done exactly once, by both
workers, and every file (originals, thumbnails, face crops) is in the bucket, none on disk.
"""

import io
import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import django_rq
import pytest
from PIL import Image
from rest_framework_simplejwt.tokens import RefreshToken
from rq import Worker
from rq.job import Job as RQJob

from recognition.models import Face, Job
from tests.conftest import FACES_DIR, REPO_ROOT
from tests.servers import free_port, log_tail, start_process, start_web_server, stop_process

pytest.importorskip("moto.server", reason="moto's S3 server comes with requirements-dev.txt")
boto3 = pytest.importorskip("boto3")

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BUCKET = "sightline-scale-out"
PHOTOS = 8
WORKER = [sys.executable, "manage.py", "rqworker", "inference", "--worker-class", "recognition.worker.SightlineWorker"]


@pytest.fixture
def s3_server(tmp_path):
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:  # noqa: BLE001 - not listening yet
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
            time.sleep(0.2)
    yield endpoint, client
    process.terminate()
    process.wait(timeout=10)


def _photos() -> list[tuple[str, bytes]]:
    """The shared gallery's photos when present (faces, so crops), else generated pictures."""
    found = sorted(p for p in (FACES_DIR / "gallery").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(found) >= PHOTOS:
        return [(path.name, path.read_bytes()) for path in found[:PHOTOS]]
    photos = []
    for index in range(PHOTOS):
        buffer = io.BytesIO()
        Image.effect_mandelbrot((320, 240), (-2 + index / 10, -1.2, 1, 1.2), 40).convert("RGB").save(buffer, "JPEG")
        photos.append((f"generated-{index}.jpg", buffer.getvalue()))
    return photos


def _upload(port: int, token: str, name: str, data: bytes) -> int:
    boundary = "scale-out-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/assets/", data=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202
        return json.load(response)["job"]["id"]


def _wait_registered(processes, connection, timeout=180):
    deadline = time.monotonic() + timeout  # each loads its models before it registers
    while True:
        names = {w.pid: w.name for w in Worker.all(connection=connection)}
        if all(p.pid in names for p in processes):
            return {names[p.pid]: p.pid for p in processes}
        for process in processes:
            assert process.poll() is None, f"worker exited:\n{log_tail(process)}"
        assert time.monotonic() < deadline, "workers did not register"
        time.sleep(0.2)


def _keys(client) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_two_workers_process_a_batch_once_with_files_in_the_bucket(user, s3_server, tmp_path):
    endpoint, client = s3_server
    local_media = tmp_path / "media"
    env = {
        "SIGHTLINE_STORAGE": "s3", "SIGHTLINE_S3_BUCKET": BUCKET, "SIGHTLINE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
        "MEDIA_ROOT": str(local_media),  # must stay empty
        "SIGHTLINE_TORCH_THREADS": "1",  # two workers on a small machine: one core each
    }
    queue = django_rq.get_queue("inference")
    queue.empty()
    workers = [start_process(WORKER, env) for _ in range(2)]
    web = None
    try:
        web_port = free_port()
        web = start_web_server(web_port, env)
        names = _wait_registered(workers, queue.connection)

        token = str(RefreshToken.for_user(user).access_token)
        with ThreadPoolExecutor(4) as pool:  # a batch arriving at once, as from a sync client
            job_ids = list(pool.map(lambda photo: _upload(web_port, token, *photo), _photos()))

        deadline = time.monotonic() + 240
        while Job.objects.filter(pk__in=job_ids, finished_at__isnull=True).exists():
            for process in workers:
                assert process.poll() is None, f"worker exited:\n{log_tail(process)}"
            assert time.monotonic() < deadline, "the batch did not finish:\n" + "\n".join(map(log_tail, workers))
            time.sleep(0.2)
    finally:
        for process in [*workers, *([web] if web else [])]:
            stop_process(process)

    jobs = list(Job.objects.filter(pk__in=job_ids).select_related("asset"))
    assert len(jobs) == PHOTOS
    assert [(job.stage, job.attempts) for job in jobs] == [("completed", 1)] * PHOTOS, [job.error for job in jobs]
    # Which worker ran each job: the rq job that processed it (a batch's jobs carry its id).
    ran_on = {names[RQJob.fetch(job.rq_job_id, connection=queue.connection).worker_name] for job in jobs}
    assert ran_on == {p.pid for p in workers}, "both workers took part"

    faces = list(Face.objects.filter(asset__in=[job.asset for job in jobs]))
    assert all(face.job_id == next(j.pk for j in jobs if j.asset_id == face.asset_id) for face in faces)
    boxes = [(face.asset_id, tuple(face.box)) for face in faces]
    assert len(boxes) == len(set(boxes)), "a face stored twice"

    stored = _keys(client)
    expected = {job.asset.file.name for job in jobs} | {job.asset.thumbnail.name for job in jobs}
    expected |= {face.crop.name for face in faces if face.crop}
    assert expected <= stored, sorted(expected - stored)
    assert not [p for p in local_media.rglob("*") if p.is_file()], "files written to local disk"
