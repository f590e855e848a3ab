"""Test session setup: real PostgreSQL+pgvector and Redis, started here when no URL is set.

Settings point at the embedded servers' sockets (or DATABASE_URL/REDIS_URL); this file makes
sure they are running before the first connection and stops what it started at the end.
Under pytest the default data directory is ``var/test/`` (see ``config.embedded.data_dir``), so
a test run has servers of its own and never touches the data or queues of a running `make run`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from config import embedded

REPO_ROOT = Path(__file__).resolve().parent.parent
FACES_DIR = Path(os.environ.get("SIGHTLINE_FACES_DIR", REPO_ROOT.parent / "shared" / "data" / "faces"))

_services: embedded.EmbeddedServices | None = None


def _sessions_dir() -> Path:
    return embedded.data_dir() / "test-sessions"


def _live_sessions() -> list[int]:
    live = []
    for marker in _sessions_dir().glob("*"):
        pid = int(marker.name)
        try:
            os.kill(pid, 0)
            live.append(pid)
        except ProcessLookupError:
            marker.unlink(missing_ok=True)
    return live


def _is_xdist_controller(config) -> bool:
    """pytest-xdist's controlling process only hands tests out: it needs no servers."""
    return config.pluginmanager.has_plugin("dsession")


def pytest_configure(config):
    if _is_xdist_controller(config) and os.environ.get("REDIS_URL"):
        # Several test processes on one Redis would take each other's jobs.
        raise pytest.UsageError("REDIS_URL is set: run the tests in one process (-n 0), or leave it unset")


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: a test process per core this run may use (a CI container's CPU quota
    included), at most 4: each has its own PostgreSQL and Redis, and its tests start workers
    that load the models."""
    from config.management.commands.serve import available_cpus

    return min(available_cpus(), 4)


def pytest_sessionstart(session):
    global _services
    if _is_xdist_controller(session.config):
        return
    _services = embedded.ensure_running()
    # The in-process test client speaks plain HTTP, as `make run` serves (SIGHTLINE_HTTPS=0;
    # the production defaults are checked in test_settings). Its pages link unhashed static
    # files: a manifest exists only after collectstatic, which the browser tests' server runs.
    from django.test import override_settings

    override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False, SECURE_HSTS_SECONDS=0,
        STORAGES={
            **settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    ).enable()
    _sessions_dir().mkdir(parents=True, exist_ok=True)
    (_sessions_dir() / str(os.getpid())).touch()


def pytest_sessionfinish(session, exitstatus):
    """The last test session using the embedded servers stops them (sessions may overlap)."""
    (_sessions_dir() / str(os.getpid())).unlink(missing_ok=True)
    if _services is None or _live_sessions():
        return
    _services.started_postgres = _services.postgres is not None
    _services.started_redis = _services.redis is not None
    _services.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    yield
    # Channels' sync_to_async threads can still hold connections to the test database at the
    # end; end them so pytest-django can drop it.
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"]],
        )


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES_DIR / "MANIFEST.csv").is_file():
        pytest.skip(f"shared face photos not found at {FACES_DIR} (set SIGHTLINE_FACES_DIR)")
    return FACES_DIR


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(email="alice@example.com", password="correct horse battery")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(email="bob@example.com", password="another long secret")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        email="staff@example.com", password="staff long secret", is_staff=True, is_superuser=True
    )


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def auth_client(api_client, user):
    """An API client authenticated as ``user`` with a real JWT access token."""
    from rest_framework_simplejwt.tokens import RefreshToken

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return api_client


@pytest.fixture(autouse=True)
def _fresh_cache_and_throttles(settings):
    """Throttle counters live in the Redis cache; each test starts with none.

    Only the cache's own keys go: ``cache.clear()`` would FLUSHDB and take rq's queues and
    worker registrations (a worker process a test started) with it."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing is slow on purpose; tests check behaviour, not the cost factor.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
