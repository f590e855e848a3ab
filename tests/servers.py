"""Real server processes for tests: rq workers and a Daphne web server on the test database.

The processes use the same PostgreSQL database (pytest-django's test database), Redis, media
root and secret key as the test session, so a test can arrange rows in-process and watch a
worker or a browser act on them. Each process writes its output to a log file under the test
data directory; ``log_tail`` shows the end of it in a failure report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import django_rq
from django.conf import settings
from django.db import connection
from rq import Worker

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """DATABASE_URL pointing at the test database pytest-django created."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def server_env(extra_env: dict | None = None) -> dict:
    # The same servers, database and files as this test session (a process outside pytest
    # would default to the development data directory).
    env = dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SIGHTLINE_DATA_DIR=str(settings.DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_XDIST_WORKER", None)  # a server is not a test process (see embedded.data_dir)
    env.update(extra_env or {})
    return env


def log_path(pid: int) -> Path:
    return Path(settings.DATA_DIR) / "logs" / f"test-process-{pid}.log"


def start_process(command: list[str], extra_env: dict | None = None) -> subprocess.Popen:
    log_dir = Path(settings.DATA_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=log_dir, prefix="test-process-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=server_env(extra_env),
            start_new_session=True,  # the test can kill the process and its children together
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    Path(log.name).replace(log_path(process.pid))
    return process


def log_tail(process: subprocess.Popen, lines: int = 40) -> str:
    try:
        text = log_path(process.pid).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def forget_old_logs() -> None:
    for old_log in (Path(settings.DATA_DIR) / "logs").glob("test-process-*.log"):
        old_log.unlink(missing_ok=True)


def stop_process(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- rq workers ----------------------------------------------------------------------------


def start_worker_process(*queues: str, extra_env: dict | None = None) -> subprocess.Popen:
    """``manage.py rqworker`` with Sightline's worker class, registered with RQ on return."""
    process = start_process(
        [sys.executable, "manage.py", "rqworker", *queues, "--worker-class", "recognition.worker.SightlineWorker"],
        extra_env,
    )
    connection_ = django_rq.get_connection(queues[0])
    deadline = time.monotonic() + 120  # the worker loads the models before it registers
    while not any(w.pid == process.pid for w in Worker.all(connection=connection_)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"rq worker for {queues} did not start:\n{log_tail(process)}")
        time.sleep(0.1)
    return process


def wait_until_serving(process: subprocess.Popen, queue_name: str, timeout: float = 60) -> None:
    """A registered worker is not yet a serving one: send it a job and wait for its answer
    (the worker's own pid, so no other worker can answer for it)."""
    rq_job = django_rq.get_queue(queue_name).enqueue(os.getpid, ttl=int(timeout), result_ttl=60)
    result = rq_job.latest_result(timeout=int(timeout))
    if result is None or result.return_value != process.pid:
        stop_process(process)
        answer = "no answer" if result is None else f"answer {result.return_value!r}"
        raise RuntimeError(f"rq worker {process.pid} on {queue_name} did not serve a job ({answer}):\n"
                           f"{log_tail(process)}")


# --- the web server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def collect_static() -> None:
    """What a release does: the hashed, compressed static files a production server serves."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=REPO_ROOT, env=server_env(), capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"collectstatic failed:\n{result.stdout}{result.stderr}")


def start_web_server(port: int, extra_env: dict | None = None) -> subprocess.Popen:
    """Daphne with production settings (DEBUG off), over plain HTTP as `make run` serves it."""
    process = start_process(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        {"SIGHTLINE_HTTPS": "0", **(extra_env or {})},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                raise RuntimeError(f"the web server did not start:\n{log_tail(process)}") from None
            time.sleep(0.2)
