"""`manage.py serve` end to end: servers, migrations, admin account, web + workers, clean stop."""

import http.client
import http.cookiejar
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import psutil
import pytest
from PIL import Image
from websockets.sync.client import connect as websocket_connect

from config import embedded
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(data_dir, port, **extra_env):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SIGHTLINE_ADMIN_PASSWORD"}}
    env.update(SIGHTLINE_DATA_DIR=str(data_dir), PORT=str(port), PYTHONUNBUFFERED="1", **extra_env)
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base, process, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited early: {process.stdout.read()}"
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                return json.load(response)
        except OSError:  # refused, or held in the backlog of the port serve binds while Daphne starts
            time.sleep(0.3)
    raise AssertionError("serve did not become ready")


def _stop(process, sig=signal.SIGINT):
    family = [process.pid] + [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
    process.send_signal(sig)
    output, _ = process.communicate(timeout=60)
    time.sleep(0.5)
    return output, [pid for pid in family if _running(pid)]


def _running(pid) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, or a zombie psutil refuses to describe
        return False


def _force_stop(process, data_dir):
    """After a failure: nothing this test started may outlive it."""
    if process.poll() is None:
        process.kill()
        process.wait()
    sockets = embedded.socket_dir(data_dir)
    embedded.RedisServer(data_dir / "redis", sockets).stop()
    embedded.PostgresServer(data_dir / "postgres", sockets).stop()


def _servers_running(data_dir):
    needle = str(data_dir)
    return [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if p.info["cmdline"] and any(needle in part for part in p.info["cmdline"])
    ]


def _wait_for(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _admin_login(base, email, password) -> bool:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": email, "password": password, "next": "/admin/"}
    ).encode()
    request = urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=form, headers={"Referer": base})
    landed = opener.open(request)
    return landed.geturl().rstrip("/").endswith("/admin") and "Log out" in landed.read().decode()


def _children(process, needle):
    found = []
    for child in psutil.Process(process.pid).children():
        try:
            if any(needle in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def _served_by(web_processes, client_port):
    """The web process holding the server side of the connection from ``client_port``."""
    for web in web_processes:
        if any(c.raddr and c.raddr.port == client_port for c in web.net_connections(kind="tcp")):
            return web.pid
    return None


def _connection_to_another_process(port, avoid_pid, web_processes):
    """An HTTP connection that the kernel gave to a web process other than ``avoid_pid``."""
    for _ in range(100):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        deadline = time.monotonic() + 5
        while (pid := _served_by(web_processes, connection.sock.getsockname()[1])) is None:
            assert time.monotonic() < deadline, "no web process accepted the connection"
            time.sleep(0.05)
        if pid != avoid_pid:
            return connection
        connection.close()
    raise AssertionError("every connection went to one web process")


def _upload_photo(connection, token):
    image = io.BytesIO()
    Image.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(image, format="JPEG")
    boundary = "serve-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + image.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    connection.request("POST", "/api/v1/assets/", body=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    response = connection.getresponse()
    answer = json.load(response)
    assert response.status == 202, answer
    return answer["job"]["id"]


def _events_cross_web_processes(base, port, process):
    """A WebSocket held by one web process gets the events of a job uploaded through another
    and processed by a worker: the channel layer (Redis) joins them."""
    register = urllib.request.Request(
        f"{base}/api/v1/auth/register/", data=json.dumps({"email": "ws@example.com", "password": "a long passphrase"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(register) as response:
        token = json.load(response)["access"]
    web_processes = _children(process, "daphne")
    with websocket_connect(f"ws://127.0.0.1:{port}/ws/jobs/?token={token}", open_timeout=30) as websocket:
        websocket_pid = _served_by(web_processes, websocket.socket.getsockname()[1])
        assert websocket_pid is not None
        upload = _connection_to_another_process(port, websocket_pid, web_processes)
        try:
            job_id = _upload_photo(upload, token)
        finally:
            upload.close()
        stages = []
        deadline = time.monotonic() + 240  # the worker loads its models first
        while "completed" not in stages and "failed" not in stages:
            event = json.loads(websocket.recv(timeout=max(1, deadline - time.monotonic())))
            if event.get("job") == job_id:
                stages.append(event["stage"])
    assert "queued" in stages, stages  # published by the other web process
    assert stages[-1] == "completed", stages  # published by the worker


def test_serve_runs_everything_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    process = _start(data_dir, port, SIGHTLINE_WEB_PROCESSES="2", SIGHTLINE_INFERENCE_WORKERS="2")
    try:
        ready = _wait_ready(base, process)
        assert ready["status"] == "ready"
        with urllib.request.urlopen(f"{base}/") as response:  # anonymous → login page
            assert "/login/" in response.geturl()
        assert len(_children(process, "daphne")) == 2
        workers = _children(process, "inference")
        assert len(workers) == 2
        for worker in workers:  # each has its device and its share of the cores
            assert worker.environ()["SIGHTLINE_DEVICE"] in ("cpu", "cuda:0", "cuda:1")
            assert int(worker.environ()["SIGHTLINE_TORCH_THREADS"]) >= 1
        _events_cross_web_processes(base, port, process)
        output, alive = _stop(process)
        leftover = _servers_running(data_dir)  # before the clean-up below could hide them
    finally:
        _force_stop(process, data_dir)
    assert alive == [], f"processes left behind: {alive}\n{output}"
    assert leftover == [], "embedded servers still running after stop"
    credentials = re.search(r"Created admin account (\S+) with password (\S+)", output)
    assert credentials, output

    # Second run: same data, no new admin, printed credentials work, a crashed worker is
    # restarted, and SIGTERM also stops everything.
    process = _start(data_dir, port, SIGHTLINE_WEB_PROCESSES="1", SIGHTLINE_INFERENCE_WORKERS="1")
    try:
        _wait_ready(base, process)
        assert _admin_login(base, credentials.group(1), credentials.group(2))
        workers = _children(process, "inference")
        worker = workers[0]
        worker.kill()

        def restarted():
            now = _children(process, "inference")
            return len(now) == len(workers) and worker.pid not in {c.pid for c in now}

        _wait_for(restarted, "worker restart")
        output, alive = _stop(process, signal.SIGTERM)
        leftover = _servers_running(data_dir)
    finally:
        _force_stop(process, data_dir)
    assert "Created admin account" not in output
    assert "restarting it" in output
    assert alive == []
    assert leftover == []
