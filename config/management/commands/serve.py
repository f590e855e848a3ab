"""`manage.py serve`: the whole system on one machine, for `make run`.

Starts the embedded PostgreSQL and Redis when no URL is configured, applies migrations,
makes sure an admin account exists, then runs Daphne and the rq workers as child processes
until Ctrl-C or SIGTERM, and stops every child (and the servers it started) on the way out.

How many of each, and how many torch threads each gets, comes from ``plan_processes``: several
Daphne processes share the one port (``serve`` binds it and hands each its listening socket),
inference workers are one per GPU (each pinned with ``SIGHTLINE_DEVICE=cuda:N``) or, on CPU,
split the cores with the realtime worker so their threads add up to the machine.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config import embedded

# Seconds a child gets to finish after SIGTERM before it is killed. rq's warm shutdown lets
# the current job finish, so the worker gets longer.
STOP_GRACE_SECONDS = {"web": 10, "worker": 30, "realtime": 15}
MAX_RESTARTS_PER_MINUTE = 5
# On CPU a worker process per core beats intra-op threads: a job's decoding, database writes
# and Python are serial, so a second process keeps the core busy where a second thread waits.
# On 2 cores, 2 workers × 1 thread ran the pipeline 1.82× face_recognition against 1.43× for
# 1 × 2 threads and 1.16× for 1 × 1 (bench/pipeline.py, docs/BENCHMARKS.md).
THREADS_PER_CPU_WORKER = 1
# What one CPU worker holds with its models loaded, after a batch of large photos (measured
# 0.96 GiB): workers are capped at half the machine's memory by this.
CPU_WORKER_MEMORY = 1 << 30
LISTEN_BACKLOG = 1024
# PostgreSQL connections each web process keeps in its pool (settings.SIGHTLINE_DB_POOL): a
# request holds one from its first query to its end; more requests wait for one.
WEB_DB_POOL = 8


@dataclass(frozen=True)
class Child:
    role: str  # web, worker, realtime, cron: the grace period and the Procfile role
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()


@dataclass(frozen=True)
class ProcessPlan:
    web_processes: int
    worker_devices: tuple[str, ...]  # one entry per inference worker: "cpu" or "cuda:N"
    worker_threads: int  # torch intra-op threads of each inference worker
    realtime_threads: int

    def describe(self) -> str:
        if not self.worker_devices:
            return f"{self.web_processes} web, no workers"
        devices = ", ".join(sorted(set(self.worker_devices)))
        return (f"{self.web_processes} web; {len(self.worker_devices)} inference on {devices}, torch threads "
                f"{self.worker_threads} each; realtime, torch threads {self.realtime_threads}")


def plan_processes(cpus: int, gpus: int, device: str = "auto", web_processes: int = 0,
                   inference_workers: int = 0, torch_threads: int = 0, memory: int = 0) -> ProcessPlan:
    """How many processes of each kind, on which device, with how many torch threads.

    On CPU, one inference worker per core with one torch thread each (``THREADS_PER_CPU_WORKER``),
    as many as half of ``memory`` (bytes; 0: unknown) holds, the cores split between them when
    memory caps them. The realtime worker answers one photo at a time with one thread, on the
    same cores: it is idle nearly always, and with OpenMP's passive waiting (config/settings.py)
    a busy moment costs a share of the cores, not a stall. With GPUs, one worker per GPU; their
    CPU threads (decoding, alignment) split the cores the realtime worker leaves. Web processes
    run no torch: one per core, they take turns with the workers when uploads arrive. ``0``
    means automatic for every count; ``torch_threads`` (SIGHTLINE_TORCH_THREADS) overrides.
    """
    cpus, realtime_threads = max(1, cpus), 1
    use_gpus = gpus > 0 and device in ("auto", "cuda")
    if device.startswith("cuda:") or use_gpus:
        workers = inference_workers or (1 if device.startswith("cuda:") else gpus)
        devices = (device,) * workers if device.startswith("cuda:") else tuple(
            f"cuda:{index % gpus}" for index in range(workers))
        budget = max(1, cpus - realtime_threads)
    else:
        by_memory = max(1, memory // 2 // CPU_WORKER_MEMORY) if memory else cpus
        workers = inference_workers or max(1, min(cpus // THREADS_PER_CPU_WORKER, by_memory))
        devices = ("cpu" if device in ("auto", "cpu") else device,) * workers
        budget = cpus
    threads = torch_threads or max(1, budget // workers)
    return ProcessPlan(
        web_processes=web_processes or cpus,
        worker_devices=devices,
        worker_threads=threads,
        realtime_threads=torch_threads or realtime_threads,
    )


def visible_gpus(device: str) -> int:
    """CUDA devices the workers could use; 0 when the device is cpu or CUDA is absent."""
    if device not in ("auto", "cuda"):
        return 0
    import torch  # only here: serve itself runs no model

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def available_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (what a
    container's ``--cpus`` sets; the machine's whole count shows through it otherwise)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return max(1, cpus)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """Sockets the web processes accept on, bound here so they share one port.

    On Linux each process gets its own socket in one SO_REUSEPORT group: the kernel spreads
    new connections evenly, where one shared socket would let the first process to wake take a
    whole burst. ``serve`` keeps them open, so connections wait in the backlog while a crashed
    web process restarts. Elsewhere the processes share one socket.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT") and count > 1
    if reuse_port:
        # A port in use fails here, as a single bind would: joining someone else's group
        # (another serve of this user) would silently split their traffic with ours.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]
    sockets = []
    try:
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(LISTEN_BACKLOG)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _die_with_parent() -> None:
    """Children get SIGTERM if `serve` itself is killed (even with SIGKILL): no orphans."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Run Sightline on this machine: servers, migrations, Daphne and the rq workers."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("SIGHTLINE_HOST", "127.0.0.1"))
        parser.add_argument("--no-worker", action="store_true", help="Run only the web server.")
        parser.add_argument("--web-processes", type=int, default=settings.SIGHTLINE_WEB_PROCESSES,
                            help="Daphne processes behind the port (default: SIGHTLINE_WEB_PROCESSES, or one per core).")
        parser.add_argument("--inference-workers", type=int, default=settings.SIGHTLINE_INFERENCE_WORKERS,
                            help="Inference workers (default: SIGHTLINE_INFERENCE_WORKERS, or from the GPUs and cores).")

    def handle(self, *args, **options):
        self._stopping = False
        previous_handlers = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        services = embedded.EmbeddedServices()
        children: dict[str, subprocess.Popen] = {}
        self._sockets: list[socket.socket] = []
        try:
            services = embedded.ensure_running()
            call_command("migrate", interactive=False, verbosity=0)
            if not settings.DEBUG:
                call_command("collectstatic", interactive=False, verbosity=0)
            self._ensure_admin()
            if not self._stopping:
                self._commands = self._child_commands(options)
                children = {name: self._spawn(child) for name, child in self._commands.items()}
                self._print_banner(options)
                self._supervise(children)
        finally:
            self._stop_children(children)
            for sock in self._sockets:
                sock.close()
            services.stop()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        self.stdout.write("Sightline stopped.")

    # --- lifecycle -----------------------------------------------------------------------

    def _request_stop(self, signum, frame):
        self._stopping = True

    def _child_commands(self, options) -> dict[str, Child]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        torch_threads = os.environ.get("SIGHTLINE_TORCH_THREADS", "").strip()
        if torch_threads and not (torch_threads.isdigit() and int(torch_threads) > 0):
            raise CommandError(f"SIGHTLINE_TORCH_THREADS must be a positive integer, got {torch_threads!r}.")
        if options["web_processes"] < 0 or options["inference_workers"] < 0:
            raise CommandError("--web-processes and --inference-workers must be 0 (automatic) or more.")
        self._plan = plan_processes(
            available_cpus(), 0 if options["no_worker"] else visible_gpus(settings.SIGHTLINE_DEVICE),
            settings.SIGHTLINE_DEVICE, options["web_processes"], options["inference_workers"],
            int(torch_threads or 0), psutil.virtual_memory().total,
        )
        if options["no_worker"]:
            self._plan = replace(self._plan, worker_devices=())
        daphne = [python, "-m", "daphne", "--access-log", os.devnull]
        app = "config.asgi:application"
        web_env = {"SIGHTLINE_DB_POOL": os.environ.get("SIGHTLINE_DB_POOL") or str(WEB_DB_POOL)}
        children: dict[str, Child] = {}
        if ":" in options["host"]:
            # Daphne adopts inherited sockets as IPv4 only: one process binds an IPv6 host itself.
            self._plan = replace(self._plan, web_processes=1)
            children["web"] = Child("web", [*daphne, "-b", options["host"], "-p", str(options["port"]), app], web_env)
        else:
            self._sockets = listening_sockets(options["host"], options["port"], self._plan.web_processes)
            for index in range(self._plan.web_processes):
                fd = self._sockets[index % len(self._sockets)].fileno()
                children[f"web-{index + 1}"] = Child("web", [*daphne, "--fd", str(fd), app], web_env, pass_fds=(fd,))
        if not options["no_worker"]:
            worker_class = ["--worker-class", "recognition.worker.SightlineWorker"]
            for index, device in enumerate(self._plan.worker_devices):
                children[f"worker-{index + 1}"] = Child(
                    "worker", [python, manage, "rqworker", "inference", "default", "--with-scheduler", *worker_class],
                    {"SIGHTLINE_DEVICE": device, "SIGHTLINE_TORCH_THREADS": str(self._plan.worker_threads)},
                )
            # Requests a user waits on get a worker of their own, never stuck behind a long video.
            children["realtime"] = Child("realtime", [python, manage, "rqworker", "realtime", *worker_class],
                                         {"SIGHTLINE_TORCH_THREADS": str(self._plan.realtime_threads)})
            # Enqueues the scheduled jobs (the nightly recluster) for the workers above.
            children["cron"] = Child("cron", [python, manage, "rqcron", "recognition.cron"])
        return children

    def _spawn(self, child: Child) -> subprocess.Popen:
        # Own session: Ctrl-C reaches only us, and we stop children in order, once.
        env = dict(os.environ, PYTHONUNBUFFERED="1", **child.env)
        # Daphne serves plain HTTP here; behind a TLS proxy set SIGHTLINE_HTTPS=1 yourself.
        env.setdefault("SIGHTLINE_HTTPS", "0")
        return subprocess.Popen(child.command, env=env, start_new_session=True, preexec_fn=_die_with_parent,
                                pass_fds=child.pass_fds)

    def _supervise(self, children: dict[str, subprocess.Popen]) -> None:
        """Wait for Ctrl-C. A child that dies (a crash in a native video decoder, say) is
        restarted; a worker's job is re-queued by the stuck-job sweep. A child that keeps dying
        stops everything, so a broken setup fails loudly instead of looping."""
        restarts: list[float] = []
        while not self._stopping:
            for name, child in children.items():
                if child.poll() is None:
                    continue
                restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
                if len(restarts) > MAX_RESTARTS_PER_MINUTE:
                    self.stderr.write(f"{name} keeps exiting (status {child.returncode}); stopping Sightline.")
                    return
                self.stderr.write(f"{name} exited with status {child.returncode}; restarting it.")
                children[name] = self._spawn(self._commands[name])
            time.sleep(0.2)

    def _stop_children(self, children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child in children.items():
            try:
                child.wait(timeout=STOP_GRACE_SECONDS.get(self._commands[name].role, 10))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    # --- setup ---------------------------------------------------------------------------

    def _ensure_admin(self) -> None:
        User = get_user_model()
        email = os.environ.get("SIGHTLINE_ADMIN_EMAIL", "admin@localhost")
        password = os.environ.get("SIGHTLINE_ADMIN_PASSWORD")
        existing = User.objects.filter(email__iexact=email).first()
        if existing is not None:
            if password and not existing.check_password(password):
                existing.set_password(password)
                existing.save(update_fields=["password"])
                self.stdout.write(f"Admin {email}: password updated from SIGHTLINE_ADMIN_PASSWORD.")
            return
        if not password and User.objects.filter(is_superuser=True).exists():
            return  # an admin exists already under another email; generate nothing
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(email=email, password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin account {email} with password {password}\n"
                    "(printed only this once: change it in the admin, or set SIGHTLINE_ADMIN_PASSWORD)."
                )
            )
        else:
            self.stdout.write(f"Created admin account {email}.")

    def _print_banner(self, options) -> None:
        base = f"http://{options['host']}:{options['port']}"
        where = f"embedded servers under {embedded.data_dir()}" if settings.USES_EMBEDDED_SERVERS else "external servers"
        self.stdout.write(
            self.style.SUCCESS("Sightline is running") + f" ({where}).\n"
            f"  App:      {base}/\n"
            f"  Admin:    {base}/admin/\n"
            f"  Queues:   {base}/admin/django_rq/dashboard/\n"
            f"  API docs: {base}/api/docs/\n"
            f"  Health:   {base}/readyz\n"
            f"Processes: {self._plan.describe()}.\n"
            "Press Ctrl-C to stop."
        )
