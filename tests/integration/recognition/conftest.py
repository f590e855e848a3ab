"""Real rq workers for recognition tests.

- ``run_jobs`` drains queues in this process with RQ's SimpleWorker (burst mode): a real
  worker loop against the real Redis, without forking, so it uses the test database.
- ``realtime_worker`` runs ``manage.py rqworker realtime`` as a separate process on the test
  database, for endpoints that wait on the realtime queue (recognize, verify, enrol);
  ``no_realtime_worker`` makes sure none runs.
Tests that rely on either commit their data: ``django_db(transaction=True)``.
"""

from __future__ import annotations

import subprocess

import django_rq
import pytest
from rq import SimpleWorker

from tests.servers import forget_old_logs, log_tail, start_worker_process, stop_process, wait_until_serving

QUEUES = ("inference", "realtime", "default")


@pytest.fixture(autouse=True)
def _empty_queues():
    for name in QUEUES:
        queue = django_rq.get_queue(name)
        queue.empty()
        for registry in (queue.started_job_registry, queue.failed_job_registry, queue.finished_job_registry,
                         queue.scheduled_job_registry, queue.deferred_job_registry):
            for job_id in registry.get_job_ids():
                try:
                    registry.remove(job_id, delete_job=True)
                except NotImplementedError:  # rq 3's started registry (a run killed mid-job left it)
                    queue.connection.zrem(registry.key, job_id)
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
            pytest.fail(f"the realtime worker exited ({exited.returncode}):\n{log_tail(exited)}")
        if self.process is None:
            self.process = start_worker_process("realtime")
            wait_until_serving(self.process, "realtime")
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@pytest.fixture(scope="session", autouse=True)
def _forget_old_worker_logs():
    forget_old_logs()


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
    print(f"--- realtime worker {process.pid}, last lines of its log ---\n{log_tail(process)}")


@pytest.fixture
def no_realtime_worker(_realtime_workers):
    _realtime_workers.stop()
