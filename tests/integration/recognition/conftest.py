"""Real rq workers for recognition tests.

- ``run_jobs`` drains queues in this process with RQ's SimpleWorker (burst mode): a real
  worker loop against the real Redis, without forking, so it uses the test database.
- ``realtime_worker`` starts ``manage.py rqworker realtime`` as a separate process on the test
  database, for endpoints that wait on the realtime queue (recognize, verify, enrol).
Tests that rely on either commit their data: ``django_db(transaction=True)``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import django_rq
import pytest
from django.conf import settings
from django.db import connection
from rq import SimpleWorker, Worker

from tests.conftest import REPO_ROOT

QUEUES = ("inference", "realtime", "default")


@pytest.fixture(autouse=True)
def _empty_queues():
    for name in QUEUES:
        queue = django_rq.get_queue(name)
        queue.empty()
        for registry in (queue.started_job_registry, queue.failed_job_registry, queue.finished_job_registry,
                         queue.scheduled_job_registry, queue.deferred_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
    yield


@pytest.fixture
def run_jobs():
    def run(*queues: str) -> None:
        worker = SimpleWorker(
            [django_rq.get_queue(name) for name in (queues or ("inference",))],
            connection=django_rq.get_connection("inference"),
        )
        worker.work(burst=True, with_scheduler=False)

    return run


def test_database_url() -> str:
    """DATABASE_URL pointing at the test database pytest-django created."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def start_worker_process(*queues: str, extra_env: dict | None = None) -> subprocess.Popen:
    # The same servers, database and files as this test session (a process outside pytest
    # would default to the development data directory).
    env = dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SIGHTLINE_DATA_DIR=str(settings.DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", *queues, "--worker-class", "recognition.worker.SightlineWorker"],
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,  # the test can kill the worker and its work-horse together
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connection_ = django_rq.get_connection(queues[0])
    deadline = time.monotonic() + 120  # the worker loads the models before it registers
    while not any(w.pid == process.pid for w in Worker.all(connection=connection_)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"rq worker for {queues} did not start")
        time.sleep(0.1)
    return process


def stop_worker_process(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def realtime_worker(django_db_setup):
    """One worker process per test module: it loads the models once, like in production."""
    process = start_worker_process("realtime")
    yield process
    stop_worker_process(process)
