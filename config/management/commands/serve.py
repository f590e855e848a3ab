"""`manage.py serve`: the whole system on one machine, for `make run`.

Starts the embedded PostgreSQL and Redis when no URL is configured, applies migrations,
makes sure an admin account exists, then runs Daphne and the rq workers as child processes
until Ctrl-C or SIGTERM, and stops every child (and the servers it started) on the way out.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config import embedded

# Seconds a child gets to finish after SIGTERM before it is killed. rq's warm shutdown lets
# the current job finish, so the worker gets longer.
STOP_GRACE_SECONDS = {"web": 10, "worker": 30, "realtime": 15}
MAX_RESTARTS_PER_MINUTE = 5


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

    def handle(self, *args, **options):
        self._stopping = False
        previous_handlers = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        services = embedded.EmbeddedServices()
        children: dict[str, subprocess.Popen] = {}
        try:
            services = embedded.ensure_running()
            call_command("migrate", interactive=False, verbosity=0)
            if not settings.DEBUG:
                call_command("collectstatic", interactive=False, verbosity=0)
            self._ensure_admin()
            if not self._stopping:
                self._commands = self._child_commands(options)
                children = {name: self._spawn(command) for name, command in self._commands.items()}
                self._print_banner(options)
                self._supervise(children)
        finally:
            self._stop_children(children)
            services.stop()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        self.stdout.write("Sightline stopped.")

    # --- lifecycle -----------------------------------------------------------------------

    def _request_stop(self, signum, frame):
        self._stopping = True

    def _child_commands(self, options) -> dict[str, list[str]]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web": [python, "-m", "daphne", "-b", options["host"], "-p", str(options["port"]), "--access-log", os.devnull, "config.asgi:application"],
        }
        if not options["no_worker"]:
            worker_class = ["--worker-class", "recognition.worker.SightlineWorker"]
            commands["worker"] = [python, manage, "rqworker", "inference", "default", "--with-scheduler", *worker_class]
            # Requests a user waits on get a worker of their own, never stuck behind a long video.
            commands["realtime"] = [python, manage, "rqworker", "realtime", *worker_class]
            # Enqueues the scheduled jobs (the nightly recluster) for the workers above.
            commands["cron"] = [python, manage, "rqcron", "recognition.cron"]
        return commands

    def _spawn(self, command: list[str]) -> subprocess.Popen:
        # Own session: Ctrl-C reaches only us, and we stop children in order, once.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Daphne serves plain HTTP here; behind a TLS proxy set SIGHTLINE_HTTPS=1 yourself.
        env.setdefault("SIGHTLINE_HTTPS", "0")
        # The children see the embedded servers' URLs as given: hand them the key we use too.
        env.setdefault("SECRET_KEY", settings.SECRET_KEY)
        return subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent)

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
                child.wait(timeout=STOP_GRACE_SECONDS.get(name, 10))
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
            "Press Ctrl-C to stop."
        )
