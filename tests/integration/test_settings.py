"""Production settings pass Django's deployment checks; misconfiguration fails loudly."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

UNSET = {"SIGHTLINE_DEBUG", "SIGHTLINE_HTTPS", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}

# No SIGHTLINE_DEBUG and no SIGHTLINE_HTTPS: the defaults are production's.
PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-0123456789",
    "ALLOWED_HOSTS": "sightline.example.org",
    # Set so that nothing embedded is started: `check` does not connect anyway.
    "DATABASE_URL": "postgres://sightline@db.invalid:5432/sightline",
    "REDIS_URL": "redis://redis.invalid:6379/0",
}


def _manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _setting(name: str, env: dict) -> str:
    script = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings"}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_debug_is_off_unless_asked_for():
    assert _setting("DEBUG", PRODUCTION_ENV) == "False"
    assert _setting("DEBUG", {**PRODUCTION_ENV, "SIGHTLINE_DEBUG": "1"}) == "True"


def test_plain_http_serving_drops_secure_cookies_and_the_https_redirect():
    """What `manage.py serve` gives its children: cookies a browser sends back over http://."""
    assert _setting("SESSION_COOKIE_SECURE", PRODUCTION_ENV) == "True"
    assert _setting("SECURE_SSL_REDIRECT", PRODUCTION_ENV) == "True"
    plain = {**PRODUCTION_ENV, "SIGHTLINE_HTTPS": "0"}
    assert _setting("SESSION_COOKIE_SECURE", plain) == "False"
    assert _setting("CSRF_COOKIE_SECURE", plain) == "False"
    assert _setting("SECURE_SSL_REDIRECT", plain) == "False"


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_unknown_device_setting_is_rejected():
    result = _manage("check", env={**PRODUCTION_ENV, "SIGHTLINE_DEVICE": "tpu"})
    assert result.returncode != 0
    assert "SIGHTLINE_DEVICE must be auto, cpu or cuda" in result.stderr


def test_s3_storage_is_selectable_by_setting():
    env = {**PRODUCTION_ENV, "SIGHTLINE_STORAGE": "s3", "SIGHTLINE_S3_BUCKET": "sightline-media"}
    script = (
        "import django; django.setup(); "
        "from django.core.files.storage import default_storage as s; "
        "s._setup(); print(type(s._wrapped).__name__, s.bucket_name)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "sightline-media"]


def test_one_gpu_may_be_named():
    """`manage.py serve` pins each inference worker with SIGHTLINE_DEVICE=cuda:N."""
    assert _setting("SIGHTLINE_DEVICE", {**PRODUCTION_ENV, "SIGHTLINE_DEVICE": "cuda:1"}) == "cuda:1"


def test_web_processes_do_not_load_torch():
    """Daphne loads the apps, the URL conf and the ASGI application, never the inference code:
    torch would cost each web process seconds at start and hundreds of MiB it never uses."""
    script = ("import sys, django; django.setup(); import config.urls, config.asgi; "
              "print(sorted(name for name in ('torch', 'torchvision', 'cv2') if name in sys.modules))")
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT,
        env={**clean, **PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "config.settings"}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
