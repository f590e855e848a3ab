"""Real rq workers for recognition tests.

- ``run_jobs`` drains queues in this process with RQ's SimpleWorker (burst mode): a real
  worker loop against the real Redis, without forking, so it uses the test database.
- ``realtime_worker`` runs ``manage.py rqworker realtime`` as a separate process on the test
  database, for endpoints that wait on the realtime queue (recognize, verify, enrol);
  ``no_realtime_worker`` makes sure none runs.
Tests that rely on either commit their data: ``django_db(transaction=True)``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
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


def worker_log_path(pid: int) -> Path:
    return Path(settings.DATA_DIR) / "logs" / f"test-worker-{pid}.log"


def start_worker_process(*queues: str, extra_env: dict | None = None) -> subprocess.Popen:
    # The same servers, database and files as this test session (a process outside pytest
    # would default to the development data directory). Its output goes to a log file that
    # the ``realtime_worker`` fixture prints after each test, so a failure shows what the
    # worker did.
    env = dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SIGHTLINE_DATA_DIR=str(settings.DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    log_dir = Path(settings.DATA_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=log_dir, prefix="test-worker-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", *queues, "--worker-class",
             "recognition.worker.SightlineWorker"],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,  # the test can kill the worker and its work-horse together
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    Path(log.name).replace(worker_log_path(process.pid))
    connection_ = django_rq.get_connection(queues[0])
    deadline = time.monotonic() + 120  # the worker loads the models before it registers
    while not any(w.pid == process.pid for w in Worker.all(connection=connection_)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"rq worker for {queues} did not start:\n{worker_log_tail(process)}")
        time.sleep(0.1)
    return process


def worker_log_tail(process: subprocess.Popen, lines: int = 40) -> str:
    try:
        text = worker_log_path(process.pid).read_text(errors="replace")
    except FileNotFoundError:
        return "(no worker log)"
    return "\n".join(text.splitlines()[-lines:])


def stop_worker_process(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_serving(process: subprocess.Popen, queue_name: str, timeout: float = 60) -> None:
    """A registered worker is not yet a serving one: send it a job and wait for its answer
    (the worker's own pid, so no other worker can answer for it)."""
    rq_job = django_rq.get_queue(queue_name).enqueue(os.getpid, ttl=int(timeout), result_ttl=60)
    result = rq_job.latest_result(timeout=int(timeout))
    if result is None or result.return_value != process.pid:
        stop_worker_process(process)
        answer = "no answer" if result is None else f"answer {result.return_value!r}"
        raise RuntimeError(f"rq worker {process.pid} on {queue_name} did not serve a job ({answer}):\n"
                           f"{worker_log_tail(process)}")


class RealtimeWorker:
    """The session's realtime worker process, started when a test first needs it.

    One for the whole session, like in production it loads the models once. Tests that need
    no worker at all (the 503 paths) stop it; the next test that needs one starts it again.
    """

    def __init__(self):
        self.process: subprocess.Popen | None = None

    def ensure_running(self) -> subprocess.Popen:
        if self.process is not None and self.process.poll() is not None:
            exited, self.process = self.process, None
            pytest.fail(f"the realtime worker exited ({exited.returncode}):\n{worker_log_tail(exited)}")
        if self.process is None:
            self.process = start_worker_process("realtime")
            wait_until_serving(self.process, "realtime")
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            stop_worker_process(self.process)
            self.process = None


@pytest.fixture(scope="session", autouse=True)
def _forget_old_worker_logs():
    for old_log in (Path(settings.DATA_DIR) / "logs").glob("test-worker-*.log"):
        old_log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def _realtime_workers(django_db_setup):
    workers = RealtimeWorker()
    yield workers
    workers.stop()


@pytest.fixture
def realtime_worker(_realtime_workers):
    process = _realtime_workers.ensure_running()
    yield process
    # Captured output: pytest shows it for a failing test only.
    print(f"--- realtime worker {process.pid}, last lines of its log ---\n{worker_log_tail(process)}")


@pytest.fixture
def no_realtime_worker(_realtime_workers):
    _realtime_workers.stop()
