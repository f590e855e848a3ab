"""`manage.py serve` end to end: servers, migrations, admin account, web + workers, clean stop."""

import http.cookiejar
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

from config import embedded
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(data_dir, port):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SIGHTLINE_ADMIN_PASSWORD"}}
    env.update(SIGHTLINE_DATA_DIR=str(data_dir), PORT=str(port), PYTHONUNBUFFERED="1")
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
        except (urllib.error.URLError, ConnectionError):
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


def _child(process, needle):
    for child in psutil.Process(process.pid).children():
        try:
            if any(needle in part for part in child.cmdline()):
                return child
        except psutil.Error:  # a killed child, not yet reaped by serve
            continue
    return None


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


def test_serve_runs_everything_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    process = _start(data_dir, port)
    try:
        ready = _wait_ready(base, process)
        assert ready["status"] == "ready"
        with urllib.request.urlopen(f"{base}/") as response:  # anonymous → login page
            assert "/login/" in response.geturl()
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
    process = _start(data_dir, port)
    try:
        _wait_ready(base, process)
        assert _admin_login(base, credentials.group(1), credentials.group(2))
        worker = _child(process, "inference")
        worker.kill()
        _wait_for(lambda: (c := _child(process, "inference")) is not None and c.pid != worker.pid, "worker restart")
        output, alive = _stop(process, signal.SIGTERM)
        leftover = _servers_running(data_dir)
    finally:
        _force_stop(process, data_dir)
    assert "Created admin account" not in output
    assert "restarting it" in output
    assert alive == []
    assert leftover == []
