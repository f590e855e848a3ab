"""Upload acceptance: concurrent API clients uploading small photos to `manage.py serve`.

    .venv/bin/python bench/upload_acceptance.py [--clients 32] [--seconds 20] [--web 1,2] [--rounds 1]
                                                [--no-before] [--tree LABEL=PATH ...]

Runs against its own embedded servers (``var/bench-upload/``, ``SIGHTLINE_DATA_DIR`` moves
it). For each contender (a number of web processes) it starts ``manage.py serve --no-worker``
(the workers idle: jobs stay queued), then N clients, one user each with a JWT, upload a
~20 KB JPEG in a loop on keep-alive connections for the given seconds, each upload new bytes
(a different JPEG comment), so every one is a new asset and job (202). The first contender is
the setup before ``serve`` ran several web processes: one Daphne whose request threads each
open their own PostgreSQL connection (``SIGHTLINE_DB_POOL=0``). Prints accepted uploads
a second and the latency percentiles of every contender as a markdown table for
docs/BENCHMARKS.md. The clients run in this process, on the same machine, with asyncio and raw
HTTP/1.1 (a few hundred microseconds of CPU per request).

``--tree LABEL=PATH`` adds, for each number of web processes, a contender served from another
checkout of the code (a ``git worktree`` of an earlier commit, say) on the same servers and
database, so two versions of the request are measured in one run.

CPU per upload: the CPU time serve's processes, PostgreSQL, Redis and these clients spent in
the window, over the uploads accepted; with the machine's share used by other programs, it
says what the cores allow (cores / CPU per upload) whatever else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("SIGHTLINE_DATA_DIR", str(REPO / "var" / "bench-upload"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Tokens minted here must outlive every contender's run.
os.environ.setdefault("SIGHTLINE_ACCESS_TOKEN_MINUTES", "240")

PHOTO = REPO.parent / "shared" / "data" / "faces" / "probes" / "obama-240p.jpg"
TARGET_BYTES = 20_000
BOUNDARY = "sightline-bench-boundary"
TREES: dict[str, Path] = {}  # --tree: other checkouts to serve, by label


@dataclass
class Outcome:
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, accepted uploads only
    errors: int = 0
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # seconds in the window, by role
    web_rss: float = 0.0  # MiB of serve's web processes together, at the end of the window
    machine_busy: float = 0.0  # seconds of all cores busy in the window, whoever used them

    @property
    def accepted(self) -> int:
        return self.statuses.get(202, 0)


def small_jpeg() -> bytes:
    """A ~20 KB JPEG: a shared photo re-encoded (or a generated picture without them)."""
    from PIL import Image, ImageFilter

    if PHOTO.is_file():
        image = Image.open(PHOTO).convert("RGB")
    else:
        import numpy as np

        pixels = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(3))
    best = b""
    for quality in range(95, 10, -1):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        best = buffer.getvalue()
        if len(best) <= TARGET_BYTES:
            break
    return best


def unique_jpeg(jpeg: bytes, marker: str) -> bytes:
    """The same picture with a comment segment after SOI: new bytes, new sha256, same pixels."""
    comment = marker.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def multipart(jpeg: bytes, name: str) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + jpeg + f"\r\n--{BOUNDARY}--\r\n".encode()


async def client(port: int, token: str, jpeg: bytes, tag: str, deadline: float, outcome: Outcome) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    count = 0
    try:
        while time.monotonic() < deadline:
            count += 1
            body = multipart(unique_jpeg(jpeg, f"{tag}-{count}-{time.time_ns()}"), f"bench-{count}.jpg")
            head = (
                f"POST /api/v1/assets/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length, keep_alive = 0, True
            while (line := await reader.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                if key.lower() == "content-length":
                    length = int(value)
                elif key.lower() == "connection" and value.strip().lower() == "close":
                    keep_alive = False
            await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            status = int(status_line.split()[1]) if status_line else 0
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            if status == 202:
                outcome.latencies.append(elapsed)
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        outcome.errors += 1
    finally:
        writer.close()


async def load(port: int, tokens: list[str], jpeg: bytes, seconds: float, tag: str,
               processes: dict[str, list] | None = None) -> Outcome:
    outcome = Outcome()
    before, busy_before = cpu_seconds(processes or {}), machine_busy_seconds()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(client(port, token, jpeg, f"{tag}-{i}", deadline, outcome) for i, token in enumerate(tokens)))
    outcome.elapsed = time.monotonic() - started  # until the last answer of the window
    after = cpu_seconds(processes or {})
    outcome.cpu = {role: after[role] - before.get(role, 0.0) for role in after}
    outcome.machine_busy = machine_busy_seconds() - busy_before
    outcome.web_rss = web_rss_mib(processes or {})
    return outcome


def web_rss_mib(processes: dict[str, list]) -> float:
    import psutil

    total = 0
    for process in processes.get("web", []):
        try:
            if "daphne" in " ".join(process.cmdline()):
                total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def machine_busy_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def our_processes(serve: subprocess.Popen) -> dict[str, list]:
    """serve and its web processes, PostgreSQL (postmaster and backends), Redis, this process."""
    import psutil

    data_dir = os.environ["SIGHTLINE_DATA_DIR"]
    servers = {"postgres": [], "redis": []}
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if data_dir in cmdline and ("postgres" in cmdline.split()[0]):
            servers["postgres"] += [process, *process.children(recursive=True)]
        elif data_dir in cmdline and "redis" in cmdline:
            servers["redis"].append(process)
    web = psutil.Process(serve.pid)
    return {"web": [web, *web.children(recursive=True)], **servers, "clients": [psutil.Process()]}


def cpu_seconds(processes: dict[str, list]) -> dict[str, float]:
    import psutil

    totals = {}
    for role, members in processes.items():
        totals[role] = 0.0
        for process in members:
            try:
                times = process.cpu_times()
            except psutil.Error:  # a PostgreSQL backend that ended meanwhile: its time is lost
                continue
            # children_*: processes that ended meanwhile (a PostgreSQL backend per connection).
            totals[role] += times.user + times.system + times.children_user + times.children_system
    return totals


def start_serve(port: int, web_processes: int, pool: bool, tree: str = "") -> subprocess.Popen:
    env = dict(
        os.environ, PORT=str(port), PYTHONUNBUFFERED="1", SIGHTLINE_DB_POOL="" if pool else "0",
        # The clients are the point here, not the per-user limits that would refuse them.
        SIGHTLINE_UPLOAD_RATE="1000000/min", SIGHTLINE_USER_RATE="1000000/min", SIGHTLINE_LOG_LEVEL="WARNING",
    )
    name = f"serve-web{web_processes}{'' if pool else '-before'}{'-' + tree if tree else ''}.log"
    log = open(Path(os.environ["SIGHTLINE_DATA_DIR"]) / name, "w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--web-processes", str(web_processes)],
        cwd=TREES.get(tree, REPO), env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited ({process.returncode}); see {log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    return process
            except OSError:  # refused, or accepted by the port serve holds while Daphne starts
                time.sleep(0.3)
        raise RuntimeError(f"serve did not become ready; see {log.name}")
    except BaseException:
        stop_serve(process)
        raise


def stop_serve(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each measured window")
    parser.add_argument("--web", default=f"1,{os.cpu_count() or 1}", help="web processes of each contender")
    parser.add_argument("--rounds", type=int, default=1, help="contenders run in turns this many times")
    parser.add_argument("--no-before", action="store_true", help="leave out the contender of before")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="also serve the code of another checkout (each number of web processes)")
    args = parser.parse_args()
    for item in args.tree:
        tree_label, _, path = item.partition("=")
        TREES[tree_label] = Path(path).resolve()
    # (web processes, pooled connections, checkout: "" for this one)
    webs = [int(n) for n in args.web.split(",")]
    contenders = ([] if args.no_before else [(1, False, "")]) + [
        (web, True, tree) for web in webs for tree in ["", *TREES]]

    from config import embedded

    servers = embedded.ensure_running()  # exported URLs: serve reuses these servers, never stops them
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        run(args, contenders)
    finally:
        servers.stop()


def label(contender: tuple[int, bool, str]) -> str:
    web, pool, tree = contender
    return f"{web} web" + ("" if pool else ", a connection per request (before)") + (f", {tree}" if tree else "")


def run(args, contenders: list[tuple[int, bool]]) -> None:
    import django_rq
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import RefreshToken

    User = get_user_model()
    users = []
    for index in range(args.clients):
        user, created = User.objects.get_or_create(email=f"bench-upload-{index}@localhost")
        if created:
            user.set_unusable_password()
            user.save()
        users.append(user)
    tokens = [str(RefreshToken.for_user(user).access_token) for user in users]
    jpeg = small_jpeg()
    queue = django_rq.get_queue("inference")

    results: dict[tuple[int, bool, str], list[Outcome]] = {c: [] for c in contenders}
    for round_ in range(args.rounds):
        for contender in contenders:
            port = free_port()
            process = start_serve(port, *contender)
            try:
                asyncio.run(load(port, tokens, jpeg, args.warmup, f"warm{round_}-{label(contender)}"))
                # After the warm-up: PostgreSQL has a backend for each web process's connection.
                processes = our_processes(process)
                results[contender].append(
                    asyncio.run(load(port, tokens, jpeg, args.seconds, f"r{round_}-{label(contender)}", processes)))
            finally:
                stop_serve(process)
                queue.empty()  # no worker runs: the jobs would only pile up in Redis
            outcome = results[contender][-1]
            print(f"round {round_ + 1}, {label(contender)}: {outcome.accepted / outcome.elapsed:.1f} accepted/s, "
                  f"statuses {outcome.statuses}, errors {outcome.errors}", file=sys.stderr)

    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n- date: {time.strftime('%Y-%m-%d')}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; Python {platform.python_version()}; load average after the run {load_avg}")
    print(f"- {args.clients} clients, {args.seconds:.0f} s per contender after {args.warmup:.0f} s of warm-up, "
          f"{len(jpeg) / 1000:.1f} KB JPEG, `manage.py serve --no-worker`, {args.rounds} round(s); best round shown\n")
    cores = os.cpu_count() or 1
    print("| web processes | accepted/s | p50 ms | p95 ms | p99 ms | other answers | client errors "
          "| CPU ms per upload: web / PostgreSQL / Redis / clients = total | cores busy with other work "
          "| ceiling on these cores (uploads/s) | web RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for contender in contenders:
        best = max(results[contender], key=lambda o: o.accepted / o.elapsed)
        others = {status: n for status, n in best.statuses.items() if status != 202}
        per_upload = {role: seconds * 1000 / max(1, best.accepted) for role, seconds in best.cpu.items()}
        total = sum(per_upload.values())
        elsewhere = max(0.0, best.machine_busy - sum(best.cpu.values())) / best.elapsed
        print(f"| {label(contender)} | {best.accepted / best.elapsed:.1f} | {percentile(best.latencies, 0.5) * 1000:.0f} | "
              f"{percentile(best.latencies, 0.95) * 1000:.0f} | {percentile(best.latencies, 0.99) * 1000:.0f} | "
              f"{others or 'none'} | {best.errors} | "
              f"{' / '.join(f'{per_upload.get(r, 0):.1f}' for r in ('web', 'postgres', 'redis', 'clients'))}"
              f" = {total:.1f} | {elsewhere:.2f} of {cores} | {cores * 1000 / total:.0f} | {best.web_rss:.0f} |")


if __name__ == "__main__":
    main()
