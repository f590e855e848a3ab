"""Soak: uploads, API reads and 100 WebSocket subscribers at once against `manage.py serve`.

    .venv/bin/python bench/soak.py [--minutes 10] [--subscribers 100] [--users 5] [--readers 4]
                                   [--upload-interval 3] [--drain-seconds 300]

Starts ``manage.py serve`` (what ``make run`` runs: its embedded PostgreSQL and Redis, Daphne
processes, the inference, realtime and cron workers) on its own data directory
(``var/bench-soak/``) and a free port, registers ``--users`` users through the API, then for
``--minutes``:

- uploads: one photo every ``--upload-interval`` seconds, users in turn, from the shared photos
  (``../shared/data/faces``; each with a few random bytes appended, so none is deduplicated);
- API reads: ``--readers`` clients in a loop over lists, details, thumbnails, crops and a report;
- ``--subscribers`` WebSocket clients on ``/ws/jobs/?token=<JWT>``, spread over the users, held
  open the whole time (each asks for the current state again now and then).

Then the uploads stop and the jobs get ``--drain-seconds`` to finish. Measured: every server
process's RSS (after a warm-up, at the end of the load; growth), HTTP answers by status (5xx
counted), WebSocket disconnects and the jobs' final events each subscriber missed, jobs still
not completed or failed after the drain ("stuck"), throughput and latencies. User throttles are
lifted (``SIGHTLINE_USER_RATE``, ``SIGHTLINE_UPLOAD_RATE``): the load is the point, not the 429s.

Prints markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench-soak"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

FINAL_STAGES = {"completed", "failed"}
BACKENDS = "postgres backends, together"
SAMPLE_SECONDS = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long the load runs")
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--subscribers", type=int, default=100, help="WebSocket clients")
    parser.add_argument("--readers", type=int, default=4, help="API read clients")
    parser.add_argument("--read-pause", type=float, default=0.1, help="seconds each reader waits between requests")
    parser.add_argument("--upload-interval", type=float, default=3.0, help="seconds between uploads")
    parser.add_argument("--drain-seconds", type=float, default=300, help="time the jobs get to finish after the load")
    args = parser.parse_args()

    from bench.shared_faces import faces_dir, gallery_photos, probe_photos

    root = faces_dir()
    photos = [(p.path.name, p.path.read_bytes()) for p in gallery_photos(root) + probe_photos(root)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = start_serve(port)
    try:
        wait_until_ready(serve, base)
        Soak(args, base, photos, serve).run()
    finally:
        stop(serve)


# --- the system under test -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(port: int) -> subprocess.Popen:
    log_path().parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path(), "w")
    env = dict(os.environ, PORT=str(port), SIGHTLINE_HTTPS="0", SIGHTLINE_ADMIN_PASSWORD="soak admin password",
               SIGHTLINE_LOG_LEVEL="WARNING", SIGHTLINE_USER_RATE="1000000/min",
               SIGHTLINE_UPLOAD_RATE="1000000/min", SIGHTLINE_ACCESS_TOKEN_MINUTES="600", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_ready(serve: subprocess.Popen, base: str, timeout: float = 600) -> None:
    """/readyz answers 200 and an inference and a realtime worker have registered with rq."""
    import django
    import requests

    django.setup()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            sys.exit(f"manage.py serve exited ({serve.returncode}); see {log_path()}")
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200 and workers_registered():
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    sys.exit(f"Sightline did not get ready in {timeout:.0f} s; see {log_path()}")


def log_path() -> Path:
    return Path(os.environ["SIGHTLINE_DATA_DIR"]) / "soak-serve.log"


def workers_registered() -> bool:
    import django_rq
    from rq import Worker

    queues = {q for w in Worker.all(connection=django_rq.get_connection("inference")) for q in w.queue_names()}
    return {"inference", "realtime"} <= queues


def stop(serve: subprocess.Popen) -> None:
    if serve.poll() is None:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


def server_processes(serve: subprocess.Popen) -> dict[str, "psutil.Process"]:  # noqa: F821
    """serve, its children by role, and the embedded PostgreSQL and Redis of the data dir."""
    import psutil

    data_dir = os.environ["SIGHTLINE_DATA_DIR"]
    root = psutil.Process(serve.pid)
    found = {"serve": root}
    roles = Counter()
    candidates = root.children(recursive=True)
    for process in psutil.process_iter(["name", "cmdline"]):
        if any(data_dir in part for part in process.info["cmdline"] or []):
            candidates.append(process)
    for process in sorted(set(candidates), key=lambda p: p.pid):
        try:
            cmdline = " ".join(process.cmdline())
            name = process.name()
        except psutil.Error:
            continue
        if "daphne" in cmdline:
            role = "web"
        elif "rqworker" in cmdline:
            role = "realtime worker" if " realtime" in cmdline.split("rqworker", 1)[1].split("--")[0] else "inference worker"
        elif "rqcron" in cmdline:
            role = "cron"
        elif name.startswith("redis"):
            role = "redis"
        elif name.startswith("postgres") and "-D" in cmdline:
            role = "postgres (postmaster)"
        else:
            continue
        try:
            parent_cmdline = " ".join(process.parent().cmdline()) if process.parent() else ""
        except psutil.Error:
            parent_cmdline = ""
        if parent_cmdline == cmdline:  # rq's scheduler, forked by the worker it serves
            role += " (its scheduler)"
        roles[role] += 1
        found[f"{role} {roles[role]}" if role == "web" else role] = process
    return found


def rss_of(processes: dict) -> dict[str, float]:
    import psutil

    sizes = {}
    for label, process in processes.items():
        try:
            sizes[label] = process.memory_info().rss / 2**20
        except psutil.Error:
            sizes[label] = float("nan")
    return sizes


def postgres_backends_rss() -> tuple[int, float]:
    """PostgreSQL's backends of this data dir: how many, and their RSS together (shared buffers
    count once per backend that touched them, so this is an upper bound)."""
    import psutil

    data_dir = os.environ["SIGHTLINE_DATA_DIR"]
    postmasters = [p for p in psutil.process_iter(["name", "cmdline"])
                   if (p.info["name"] or "").startswith("postgres") and any(data_dir in c for c in p.info["cmdline"] or [])]
    backends = [c for p in postmasters for c in p.children()]
    total = 0.0
    for backend in backends:
        try:
            total += backend.memory_info().rss / 2**20
        except psutil.Error:
            pass
    return len(backends), total


# --- the load ------------------------------------------------------------------------------


class Soak:
    def __init__(self, args, base: str, photos: list[tuple[str, bytes]], serve: subprocess.Popen):
        self.args, self.base, self.photos, self.serve = args, base, photos, serve
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()  # (kind, status) -> count
        self.errors: Counter = Counter()  # transport errors by kind
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.server_error_samples: list[str] = []
        self.jobs: dict[int, list[int]] = defaultdict(list)  # user index -> job ids
        self.assets: dict[int, list[int]] = defaultdict(list)
        self.ws_connected = 0
        self.ws_disconnects = 0
        self.ws_messages = 0
        self.ws_final_seen: dict[int, set[int]] = {}  # subscriber -> job ids seen completed/failed
        self.ws_user: dict[int, int] = {}
        self.rss_timeline: list[tuple[float, dict[str, float]]] = []
        self.backend_counts: list[int] = []

    # --- accounts ----------------------------------------------------------------------

    def register_users(self) -> None:
        import requests

        stamp = int(time.time())
        self.tokens = []
        self.user_ids = []
        for index in range(self.args.users):
            response = requests.post(f"{self.base}/api/v1/auth/register/", timeout=30, json={
                "email": f"soak-{stamp}-{index}@example.com", "password": "a long soak passphrase"})
            response.raise_for_status()
            self.tokens.append(response.json()["access"])
            me = requests.get(f"{self.base}/api/v1/me/", headers=self.auth(index), timeout=30)
            self.user_ids.append(me.json()["id"])

    def auth(self, user: int) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    # --- HTTP --------------------------------------------------------------------------

    def record(self, kind: str, started: float, response=None, error: Exception | None = None) -> None:
        with self.lock:
            if error is not None:
                self.errors[f"{kind}: {type(error).__name__}"] += 1
                return
            self.statuses[(kind, response.status_code)] += 1
            self.latencies[kind].append(time.perf_counter() - started)
            if response.status_code >= 500 and len(self.server_error_samples) < 10:
                self.server_error_samples.append(f"{kind} {response.request.method} {response.request.path_url} "
                                                 f"{response.status_code} {response.text[:200]}")

    def uploader(self) -> None:
        import requests

        session = requests.Session()
        users = itertools.cycle(range(self.args.users))
        next_at = time.monotonic()
        rng = random.Random(1)
        # Every photo once per round, in a new order each round: the first round shows the worker
        # every size it will see (the warm-up ends after it).
        photos = itertools.chain.from_iterable(rng.sample(self.photos, len(self.photos)) for _ in itertools.count())
        while not self.stopping.is_set():
            user = next(users)
            name, data = next(photos)
            body = data + rng.randbytes(8)  # a new file each time: no deduplication
            started = time.perf_counter()
            try:
                response = session.post(f"{self.base}/api/v1/assets/", headers=self.auth(user), timeout=120,
                                        files={"file": (name, body)})
            except requests.RequestException as error:
                self.record("upload", started, error=error)
            else:
                self.record("upload", started, response)
                if response.status_code in (200, 202):
                    answer = response.json()
                    with self.lock:
                        self.assets[user].append(answer["asset"]["id"])
                        if answer["job"]:
                            self.jobs[user].append(answer["job"]["id"])
            next_at += self.args.upload_interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def reader(self, number: int) -> None:
        import requests

        session = requests.Session()
        rng = random.Random(100 + number)
        while not self.stopping.is_set():
            user = rng.randrange(self.args.users)
            with self.lock:
                assets = list(self.assets[user][-50:])
            paths = ["/api/v1/assets/", "/api/v1/jobs/", "/api/v1/faces/", "/api/v1/subjects/", "/api/v1/me/",
                     "/api/v1/reports/summary/", "/api/v1/appearances/"]
            if assets:
                asset = rng.choice(assets)
                paths += [f"/api/v1/assets/{asset}/", f"/api/v1/assets/{asset}/thumbnail/",
                          f"/api/v1/faces/?asset={asset}", f"/api/v1/assets/{asset}/similar/?limit=5"]
            path = rng.choice(paths)
            started = time.perf_counter()
            try:
                response = session.get(f"{self.base}{path}", headers=self.auth(user), timeout=60)
            except requests.RequestException as error:
                self.record("read", started, error=error)
            else:
                self.record("read", started, response)
                if path.startswith("/api/v1/faces/?") and response.status_code == 200:
                    faces = response.json()["results"]
                    if faces:
                        crop_started = time.perf_counter()
                        try:
                            crop = session.get(f"{self.base}/api/v1/faces/{faces[0]['id']}/crop/",
                                               headers=self.auth(user), timeout=60)
                            self.record("read", crop_started, crop)
                        except requests.RequestException as error:
                            self.record("read", crop_started, error=error)
            self.stopping.wait(self.args.read_pause)

    # --- WebSockets ----------------------------------------------------------------------

    async def subscriber(self, number: int, all_connected: asyncio.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        user = number % self.args.users
        self.ws_user[number] = user
        self.ws_final_seen[number] = set()
        url = self.base.replace("http://", "ws://") + f"/ws/jobs/?token={self.tokens[user]}"
        first = True
        while not self.ws_stop.is_set():
            try:
                async with connect(url, open_timeout=60, max_size=2**22) as socket_:
                    if first:
                        self.ws_connected += 1
                        first = False
                        if self.ws_connected == self.args.subscribers:
                            all_connected.set()
                    last_state = time.monotonic()
                    while not self.ws_stop.is_set():
                        if time.monotonic() - last_state > 60 + number % 30:
                            await socket_.send(json.dumps({"type": "state"}))
                            last_state = time.monotonic()
                        try:
                            message = await asyncio.wait_for(socket_.recv(), timeout=1)
                        except asyncio.TimeoutError:
                            continue
                        event = json.loads(message)
                        self.ws_messages += 1
                        if event.get("stage") in FINAL_STAGES:
                            self.ws_final_seen[number].add(event["job"])
            except (ConnectionClosed, OSError, asyncio.TimeoutError) as error:
                if self.ws_stop.is_set():
                    break
                self.ws_disconnects += 1
                with self.lock:
                    self.errors[f"websocket: {type(error).__name__}"] += 1
                await asyncio.sleep(1)

    def websockets_thread(self, ready: threading.Event) -> None:
        async def run():
            self.ws_stop = asyncio.Event()
            self.ws_loop = asyncio.get_running_loop()
            all_connected = asyncio.Event()
            tasks = [asyncio.create_task(self.subscriber(n, all_connected)) for n in range(self.args.subscribers)]
            await asyncio.wait_for(all_connected.wait(), timeout=300)
            ready.set()
            await asyncio.gather(*tasks)

        asyncio.run(run())

    # --- the run -------------------------------------------------------------------------

    def sample_rss(self, started: float) -> dict[str, float]:
        sizes = rss_of(self.processes)
        backends, sizes[BACKENDS] = postgres_backends_rss()
        self.backend_counts.append(backends)
        self.rss_timeline.append((time.monotonic() - started, sizes))
        return sizes

    def job_stages(self) -> Counter:
        from recognition.models import Job

        return Counter(Job.objects.filter(asset__owner_id__in=self.user_ids).values_list("stage", flat=True))

    def run(self) -> None:
        self.register_users()
        self.processes = server_processes(self.serve)
        ready = threading.Event()
        ws_thread = threading.Thread(target=self.websockets_thread, args=(ready,), daemon=True)
        ws_thread.start()
        if not ready.wait(timeout=300):
            sys.exit(f"only {self.ws_connected} of {self.args.subscribers} WebSocket clients connected")
        started = time.monotonic()
        idle_rss = self.sample_rss(started)
        threads = [threading.Thread(target=self.uploader, daemon=True)]
        threads += [threading.Thread(target=self.reader, args=(n,), daemon=True) for n in range(self.args.readers)]
        for thread in threads:
            thread.start()
        duration = self.args.minutes * 60
        # Warm-up: a tenth of the run, and until the first round of photos is processed (the
        # allocators' high-water marks follow the biggest inputs; growth after that is what leaks).
        warm_up = max(30.0, duration / 10)
        baseline = None
        while time.monotonic() - started < duration:
            time.sleep(min(SAMPLE_SECONDS, max(0.1, duration - (time.monotonic() - started))))
            sizes = self.sample_rss(started)
            if (baseline is None and time.monotonic() - started >= warm_up
                    and self.job_stages()["completed"] >= len(self.photos)):
                baseline = (time.monotonic() - started, sizes)
        end_rss = self.sample_rss(started)
        if baseline is None:
            sys.exit("the warm-up did not end: fewer jobs completed than there are photos; run longer")
        (Path(os.environ["SIGHTLINE_DATA_DIR"]) / "soak-rss.json").write_text(json.dumps(self.rss_timeline))
        self.stopping.set()
        for thread in threads:
            thread.join(timeout=180)
        load_seconds = time.monotonic() - started
        stages_at_end = self.job_stages()

        drain_started = time.monotonic()
        while time.monotonic() - drain_started < self.args.drain_seconds:
            stages = self.job_stages()
            if not set(stages) - FINAL_STAGES:
                break
            time.sleep(2)
        drain_seconds = time.monotonic() - drain_started
        stages = self.job_stages()
        time.sleep(3)  # the last events reach the subscribers
        self.ws_loop.call_soon_threadsafe(self.ws_stop.set)
        ws_thread.join(timeout=60)
        self.report(idle_rss, baseline, end_rss, load_seconds, stages_at_end, stages, drain_seconds)

    # --- the report ----------------------------------------------------------------------

    def report(self, idle_rss, baseline, end_rss, load_seconds, stages_at_end, stages, drain_seconds) -> None:
        import torch

        from recognition.models import Job

        base_at, base_rss = baseline
        finished = Job.objects.filter(asset__owner_id__in=self.user_ids, stage__in=FINAL_STAGES)
        final_by_user = defaultdict(set)
        for job_id, owner_id in finished.values_list("pk", "asset__owner_id"):
            final_by_user[self.user_ids.index(owner_id)].add(job_id)
        missed = sum(len(final_by_user[self.ws_user[n]] - seen) for n, seen in self.ws_final_seen.items())
        expected = sum(len(final_by_user[self.ws_user[n]]) for n in self.ws_final_seen)
        failures = Counter(Job.objects.filter(asset__owner_id__in=self.user_ids, stage="failed")
                           .values_list("error_code", flat=True))
        stuck = sum(count for stage, count in stages.items() if stage not in FINAL_STAGES)
        server_errors = sum(count for (kind, status), count in self.statuses.items() if status >= 500)

        print(f"- date: {time.strftime('%Y-%m-%d')}; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores; torch {torch.__version__}; load {self.args.minutes:g} min: "
              f"{self.args.users} users, an upload every {self.args.upload_interval:g} s, {self.args.readers} "
              f"readers (pause {self.args.read_pause:g} s), {self.args.subscribers} WebSocket subscribers")
        print(f"- load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print()
        print(f"RSS (MiB): after the subscribers connected; after {base_at:.0f} s of load (warm-up); "
              f"at the end of the load ({load_seconds:.0f} s); growth from the warm-up to the end; the most seen.")
        print()
        print("| process | idle | warm | end | growth | max |")
        print("|---|---|---|---|---|---|")
        for label in end_rss:
            peak = max(sizes.get(label, 0) for _, sizes in self.rss_timeline)
            growth = (end_rss[label] - base_rss[label]) / base_rss[label] * 100 if base_rss.get(label) else float("nan")
            print(f"| {label} | {idle_rss.get(label, float('nan')):.0f} | {base_rss.get(label, float('nan')):.0f} | "
                  f"{end_rss[label]:.0f} | {growth:+.1f} % | {peak:.0f} |")
        print()
        minutes = range(1, int(load_seconds // 60) + 1)
        at_minute = {m: min(self.rss_timeline, key=lambda sample: abs(sample[0] - m * 60))[1] for m in minutes}
        print("RSS (MiB) minute by minute:")
        print()
        print("| process | " + " | ".join(f"{m} min" for m in minutes) + " |")
        print("|---|" + "---|" * len(minutes))
        for label in end_rss:
            print(f"| {label} | " + " | ".join(f"{at_minute[m].get(label, float('nan')):.0f}" for m in minutes) + " |")
        print(f"\nPostgreSQL backends: {self.backend_counts[0]} idle, {min(self.backend_counts)} to "
              f"{max(self.backend_counts)} during the load (their RSS counts the shared buffers each touched).")
        print()
        uploads_ok = sum(c for (kind, status), c in self.statuses.items() if kind == "upload" and status in (200, 202))
        reads = sum(c for (kind, _), c in self.statuses.items() if kind == "read")
        print("| | |")
        print("|---|---|")
        print(f"| HTTP answers | {dict(sorted((f'{k} {s}', c) for (k, s), c in self.statuses.items()))} |")
        print(f"| **5xx** | **{server_errors}** |")
        print(f"| transport errors | {dict(self.errors) or 0} |")
        print(f"| uploads accepted | {uploads_ok} ({uploads_ok / load_seconds * 60:.1f}/min) |")
        print(f"| reads | {reads} ({reads / load_seconds:.1f}/s) |")
        for kind, values in sorted(self.latencies.items()):
            values = sorted(values)
            print(f"| {kind} latency p50 / p95 / max | {statistics.median(values) * 1000:.0f} / "
                  f"{values[int(len(values) * 0.95)] * 1000:.0f} / {values[-1] * 1000:.0f} ms |")
        print(f"| jobs at the end of the load | {dict(stages_at_end)} |")
        print(f"| jobs after draining {drain_seconds:.0f} s | {dict(stages)} |")
        print(f"| **stuck jobs** (not completed/failed) | **{stuck}** |")
        if failures:
            print(f"| failed jobs by reason | {dict(failures)} |")
        print(f"| WebSocket clients | {self.ws_connected} connected, {self.ws_disconnects} disconnects, "
              f"{self.ws_messages} messages |")
        print(f"| final job events missed by subscribers | {missed} of {expected} |")
        if self.server_error_samples:
            print()
            print("5xx samples:")
            for sample in self.server_error_samples:
                print(f"- `{sample}`")


if __name__ == "__main__":
    main()
