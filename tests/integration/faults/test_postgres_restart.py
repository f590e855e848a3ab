"""PostgreSQL restarted mid-batch, under a real web server (Daphne) and a real worker.

While the database is down, ``/readyz`` answers 503 naming it, an upload gets a clear 503 (JSON
from the API, the styled error page from the dashboard) and leaves no file and no row, and the
job that was running fails over to RQ's retries. Once it is back, ``/readyz`` answers 200 and
every job of the batch completes.

The server restarted is the test session's own embedded PostgreSQL (stopped with ``pg_ctl stop
-m fast``, which ends every connection, as a crash or an upgrade would). A private server would
need its own initdb and migrations (tens of seconds on the shared machine); instead the fixture
makes sure the session's server is back and every connection of this process is renewed before
the next test. Skipped when the session uses an external ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
import uuid

import django_rq
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from media.models import Asset
from recognition import services
from recognition.models import Job, Stage
from tests.integration.faults.conftest import embedded_postgres, start_worker, wait_for
from tests.integration.recognition.api_helpers import upload_of
from tests.servers import collect_static, free_port, log_tail, start_web_server, stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Retries spread over half a minute, enough to outlast the restart.
SERVER_ENV = {"SIGHTLINE_JOB_RETRY_INTERVALS": "2,4,8,16", "SIGHTLINE_WORKER_MAINTENANCE_SECONDS": "5"}


@pytest.fixture
def postgres():
    server = embedded_postgres()
    if server is None:
        pytest.skip("DATABASE_URL points at an external PostgreSQL: not ours to restart")
    yield server
    server.wait_until_ready()  # started again if a failure left it stopped
    connections.close_all()


@pytest.fixture
def servers(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    env = {"MEDIA_ROOT": str(tmp_path), **SERVER_ENV}
    port = free_port()
    collect_static()  # the web server runs with production settings: hashed static files
    web = start_web_server(port, env)
    worker = start_worker("inference", extra_env=env)
    yield f"http://127.0.0.1:{port}"
    for process in (worker, web):
        stop_process(process)
        print(f"--- {process.args[2]} {process.pid} ---\n{log_tail(process, 40)}")


def request(url, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def multipart(fields: dict[str, str], field: str, name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_postgres_restart_mid_batch_refuses_uploads_cleanly_and_loses_no_job(
        postgres, servers, user, batch, faces_dir, tmp_path):
    token = str(RefreshToken.for_user(user).access_token)
    browser = Client()
    browser.force_login(user)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = secrets.token_hex(16)  # any 32-character secret: the cookie and the form must agree
    for path in batch:
        services.upload(user, upload_of(path))
    jobs = Job.objects.filter(asset__owner=user)
    wait_for(lambda: jobs.filter(stage=Stage.COMPLETED).exists(), 120, "the first photo of the batch")
    assert jobs.exclude(stage=Stage.COMPLETED).exists(), "the batch finished before the restart"
    files_before = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "crops" not in p.parts)
    photo = (faces_dir / "probes" / "obama3.jpg").read_bytes()  # not in the batch

    retries = django_rq.get_queue("inference").scheduled_job_registry
    retries_before = set(retries.get_job_ids())
    postgres.stop()
    try:
        status, _, body = request(f"{servers}/readyz")
        assert status == 503
        ready = json.loads(body)
        assert ready["checks"]["database"]["ok"] is False and "database unreachable" in ready["message"]

        data, content_type = multipart({}, "file", "new.jpg", photo)
        status, kind, body = request(f"{servers}/api/v1/assets/", data,
                                     {"Authorization": f"Bearer {token}", "Content-Type": content_type})
        assert (status, kind) == (503, "application/json"), body
        refusal = json.loads(body)
        assert refusal["code"] == "unavailable" and "database is not answering" in refusal["message"]

        data, content_type = multipart({"csrfmiddlewaretoken": csrf}, "files", "new.jpg", photo)
        cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"
        status, kind, html = request(f"{servers}/upload/", data, {"Cookie": cookies, "Content-Type": content_type,
                                                                   "Accept": "text/html"})
        assert status == 503 and kind.startswith("text/html"), html
        assert "Temporarily unavailable" in html and "database is not answering" in html
        # Down until the worker meets it: its job fails and RQ schedules the retry (in Redis,
        # which is up). A fixed pause could fall inside a batch's detection, which needs no
        # database, and end before the worker asked for one.
        wait_for(lambda: set(retries.get_job_ids()) - retries_before, 60, "the running job to meet the outage")
    finally:
        postgres.wait_until_ready()
        connections.close_all()

    wait_for(lambda: request(f"{servers}/readyz")[0] == 200, 30, "/readyz to answer 200 again")
    wait_for(lambda: all(job.is_finished for job in jobs.all()), 200, "the batch to finish")
    assert [(job.asset.original_name, job.stage, job.error) for job in jobs.select_related("asset")
            if job.stage != Stage.COMPLETED] == []
    assert Asset.objects.filter(owner=user).count() == len(batch)  # the refused uploads left no row
    files_after = sorted(p for p in tmp_path.rglob("*") if p.is_file() and "crops" not in p.parts)
    assert files_after == files_before  # nor a file
