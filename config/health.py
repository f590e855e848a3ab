"""Liveness and readiness probes.

``/readyz`` is 503 when this web process cannot serve: the database or Redis not answering, or
a migration pending; the body names what failed. It also reports the workers that have their
models loaded and serve inference (``workers``), without failing on none: a web process serves
pages, the API and uploads without them (uploads wait, queued in PostgreSQL, until a worker
comes), and a web-only deployment or a worker restarting must not take the site out of a load
balancer. Alert on ``workers.ok`` being false instead.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request):
    """The process is alive and serving requests; checks nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"database unreachable: {exc.__class__.__name__}"
    return None


def _check_migrations() -> str | None:
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return f"migrations unknown: {exc.__class__.__name__}"
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        return f"{len(pending)} unapplied migration(s): {names}"
    return None


def _check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"redis unreachable: {exc.__class__.__name__}"
    return None


CHECKS = {"database": _check_database, "migrations": _check_migrations, "redis": _check_redis}


def _model_workers() -> dict:
    """Workers with their models loaded, from the keys they refresh with every heartbeat."""
    from recognition.worker import announced_model_workers

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        workers = announced_model_workers(client)
    except (redis.RedisError, OSError) as exc:
        return {"ok": False, "count": 0, "error": f"workers unknown: redis unreachable ({exc.__class__.__name__})"}
    queues: dict[str, int] = {}
    for worker in workers:
        for queue in worker.get("queues", []):
            queues[queue] = queues.get(queue, 0) + 1
    report = {"ok": bool(workers), "count": len(workers), "queues": queues}
    if not workers:
        report["error"] = "no worker with models is serving: uploads stay queued until one starts"
    return report


@require_GET
@never_cache
def readyz(request):
    """Ready to serve: database answers, Redis answers, no migration is pending. 503 otherwise.
    ``workers`` is reported, not required (see the module docstring)."""
    checks = {}
    failures = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        problem = check()
        checks[name] = {
            "ok": problem is None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            **({"error": problem} if problem else {}),
        }
        if problem:
            failures.append(problem)
    status = 200 if not failures else 503
    body = {"status": "ready" if not failures else "unavailable", "checks": checks, "workers": _model_workers()}
    if failures:
        body["message"] = "; ".join(failures)
    return JsonResponse(body, status=status)
