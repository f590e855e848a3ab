"""Sightline settings: one module, every knob read from the environment.

| variable | default | meaning |
|---|---|---|
| ``SIGHTLINE_DEBUG`` | ``0`` | ``1``: development mode (Django's debug pages, unhashed static files); never in production |
| ``SECRET_KEY`` | generated once into ``<data>/secret_key`` with the embedded servers; required with external ones | Django's signing key |
| ``SIGHTLINE_HTTPS`` | ``1`` (``manage.py serve`` sets ``0``) | served over HTTPS: secure cookies, HSTS, HTTP→HTTPS redirect; ``0`` for plain HTTP on loopback |
| ``ALLOWED_HOSTS`` | ``localhost,127.0.0.1,[::1]`` | comma-separated |
| ``CSRF_TRUSTED_ORIGINS`` | empty | comma-separated origins (``https://example.org``) |
| ``SIGHTLINE_DATA_DIR`` | ``var/`` | embedded servers' data, uploads, the generated secret |
| ``DATABASE_URL`` | embedded PostgreSQL (unix socket under the data dir) | ``postgres://user:pass@host:5432/db`` |
| ``REDIS_URL`` | embedded Redis (unix socket under the data dir) | ``redis://host:6379/0`` |
| ``SIGHTLINE_DB_POOL`` | ``0``: a persistent connection per thread (``manage.py serve`` gives its web processes ``8``) | PostgreSQL connections pooled per process; set it for web (ASGI) processes |
| ``SIGHTLINE_DEVICE`` | ``auto`` | inference device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``manage.py serve`` pins each inference worker to a GPU itself) |
| ``SIGHTLINE_TORCH_THREADS`` | ``manage.py serve`` splits the cores (docs/DEPLOYMENT.md); elsewhere every core | torch intra-op threads of each process that runs models |
| ``SIGHTLINE_CPU_KEEP_FREED_MB`` | ``1024`` | freed memory a model process keeps for reuse (glibc), instead of faulting big tensors' pages in again for every photo; ``0``: glibc's default |
| ``SIGHTLINE_INFERENCE_WORKERS`` | one per GPU; on CPU one per core, as many as half the memory holds at 1 GiB each | inference workers ``manage.py serve`` starts |
| ``SIGHTLINE_WEB_PROCESSES`` | one per core | web (Daphne) processes ``manage.py serve`` starts behind its one port |
| ``SIGHTLINE_MAX_UPLOAD_MB`` | ``50`` | largest image upload |
| ``SIGHTLINE_MAX_VIDEO_MB`` | ``500`` | largest video upload |
| ``SIGHTLINE_UPLOAD_RATE`` | ``120/min`` | uploads per user (API and dashboard together; ``N/s``, ``/min``, ``/hour``, ``/day``), then 429 with ``Retry-After`` |
| ``SIGHTLINE_MAX_IMAGE_PIXELS`` | ``89478485`` | decompression-bomb guard (Pillow's default) |
| ``SIGHTLINE_MAX_VIDEO_PIXELS`` | ``33177600`` | largest video frame (8K UHD, 7680×4320) |
| ``SIGHTLINE_MAX_VIDEO_SECONDS`` | ``600`` | longest video accepted |
| ``SIGHTLINE_MATCH_THRESHOLD`` | ``0.6`` | face distance under which two faces are the same person |
| ``SIGHTLINE_ENROL_MIN_QUALITY`` | ``0.4`` | faces below this quality are not counted when a photo is enrolled without a face_index, and a face named below it is not used for matching |
| ``SIGHTLINE_CLUSTER_DISTANCE`` | ``0.5`` | unknown faces closer than this are neighbours for clustering |
| ``SIGHTLINE_CLUSTER_MIN_FACES`` | ``2`` | faces it takes to form a person without a name |
| ``SIGHTLINE_CLUSTER_MIN_QUALITY`` | ``SIGHTLINE_ENROL_MIN_QUALITY`` | faces below this quality never seed a cluster |
| ``SIGHTLINE_CLUSTER_NEIGHBOURS`` | ``16`` | nearest neighbours looked at per face when clustering |
| ``SIGHTLINE_CLUSTER_THREADS`` | ``2`` | database connections a large recluster searches neighbours on at once |
| ``SIGHTLINE_RECLUSTER_CRON`` | ``30 3 * * *`` | when the nightly full recluster runs (cron syntax, UTC; ``manage.py rqcron recognition.cron``) |
| ``SIGHTLINE_REPORT_CACHE_SECONDS`` | ``60`` | how long a report stays cached in Redis (a finished job of the owner renews it sooner); ``0``: never cached |
| ``SIGHTLINE_DUPLICATE_DISTANCE`` | ``0.05`` | image embeddings closer than this (cosine distance) are near-duplicate photos |
| ``SIGHTLINE_TAG_MIN_PROBABILITY`` | ``0.15`` | an image tag is kept only when the tagger gives it at least this probability |
| ``SIGHTLINE_VIDEO_FPS`` | ``2`` | video frames analysed per second of video |
| ``SIGHTLINE_VIDEO_DETECT_SIDE`` | ``0`` (full size) | find video faces on frames this big (long side), align them from full-size ones: faster, less accurate |
| ``SIGHTLINE_VIDEO_MAX_FRAMES`` | ``SIGHTLINE_MAX_VIDEO_SECONDS`` × ``SIGHTLINE_VIDEO_FPS`` | most frames analysed per video |
| ``SIGHTLINE_VIDEO_FRAME_BATCH`` | ``16`` | frames decoded and analysed together |
| ``SIGHTLINE_PHOTO_BATCH`` | ``8`` | queued photos a worker takes and analyses together (1: one at a time) |
| ``SIGHTLINE_JOB_RETRY_INTERVALS`` | ``10,60,300`` | seconds before each retry after a transient error |
| ``SIGHTLINE_JOB_TIMEOUT_SECONDS`` | ``3600`` | hard limit for one processing job |
| ``SIGHTLINE_WORKER_MAINTENANCE_SECONDS`` | ``60`` | how often each worker re-queues jobs no worker will finish (their rq job lost, their worker dead) |
| ``SIGHTLINE_REALTIME_TIMEOUT_SECONDS`` | ``30`` | how long recognize/verify/enrol wait for a worker (then 503) |
| ``SIGHTLINE_REALTIME_MAX_MB`` | ``10`` | largest photo for the synchronous endpoints |
| ``SIGHTLINE_NUM_PROXIES`` | ``0`` | reverse proxies in front (for client addresses in throttling) |
| ``SIGHTLINE_STORAGE`` | ``local`` | ``local`` (files under ``MEDIA_ROOT``) or ``s3`` (django-storages) |
| ``MEDIA_ROOT`` | ``<data>/media`` | where uploads live with local storage |
| ``SIGHTLINE_SECURE_SSL_REDIRECT`` | ``SIGHTLINE_HTTPS`` | redirect HTTP to HTTPS (off behind a TLS proxy that does it) |
| ``SIGHTLINE_LOG_LEVEL`` | ``INFO`` | root log level (logs are JSON lines on stdout) |
| ``SIGHTLINE_LOGIN_RATE`` | ``10/min`` | login attempts per client |
| ``SIGHTLINE_ACCESS_TOKEN_MINUTES`` | ``15`` | JWT access token lifetime |
| ``SIGHTLINE_REFRESH_TOKEN_DAYS`` | ``7`` | JWT refresh token lifetime |
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded

# torch's idle OpenMP threads sleep instead of spinning. libgomp reads this once, when torch
# loads, and settings come first in every Sightline process. Spinning threads of processes that
# share cores stall each other: the engine ran 4-15x slower on a busy 2-core machine without it
# (docs/BENCHMARKS.md, "torch threads on shared cores").
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


# Production defaults: debug pages list the URL conf and settings, so they are opt-in.
DEBUG = env_bool("SIGHTLINE_DEBUG", False)
DATA_DIR = embedded.data_dir()
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.database_url(DATA_DIR)
REDIS_URL = os.environ.get("REDIS_URL") or embedded.redis_url(DATA_DIR)
# The embedded servers (``manage.py serve`` and the scripts export their URLs): one machine.
USES_EMBEDDED_SERVERS = DATABASE_URL == embedded.database_url(DATA_DIR) and REDIS_URL == embedded.redis_url(DATA_DIR)


def _secret_key() -> str:
    if key := os.environ.get("SECRET_KEY"):
        return key
    if not (DEBUG or USES_EMBEDDED_SERVERS):
        # Several machines against one database must sign with one key: generating one per
        # machine would log users out and reject their tokens at random.
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off and the servers are external.")
    # One machine (the embedded servers): generated once and kept, so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_rq",
    "config.apps.SightlineConfig",
    "accounts",
    "media",
    "recognition",
    "analysis",
]

MIDDLEWARE = [
    "config.logging.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.api.RefusalMiddleware",  # refusals and outages escaping a page view: 4xx/5xx with a message
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Servers -----------------------------------------------------------------------------

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
# Web processes (ASGI) run each request's sync code on a thread of its own: a persistent
# connection per thread is a new PostgreSQL backend per request, left open until garbage
# collection (a few hundred under load, then "too many clients"). There, a pool of this many
# connections per process instead; `manage.py serve` sets it for its web processes.
SIGHTLINE_DB_POOL = env_int("SIGHTLINE_DB_POOL", 0)
if SIGHTLINE_DB_POOL > 0:
    # Health checks stay on: a connection is checked as it leaves the pool, so after a
    # PostgreSQL restart the next request gets a new one instead of an error.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": SIGHTLINE_DB_POOL, "timeout": 10}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "sightline:channels"},
    }
}

# Queues: `inference` for uploads (long), `realtime` for requests a user waits on
# (recognize, verify), `default` for housekeeping.
RQ_QUEUE_NAMES = ("inference", "realtime", "default")
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600} for name in RQ_QUEUE_NAMES}
RQ_SHOW_ADMIN_LINK = True
# We enqueue from transaction.on_commit ourselves; django-rq's own deferral would hand back
# no job id inside a transaction.
RQ = {"COMMIT_MODE": "auto"}

CACHES = {
    "default": {
        "BACKEND": "config.cache.SharedClientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sightline",
    }
}

# --- Accounts ----------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_RATE = os.environ.get("SIGHTLINE_LOGIN_RATE", "10/min")

# --- API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    # Proxies in front of us that append to X-Forwarded-For; 0 = use the socket's address, so
    # a client cannot pick its own address for throttling.
    "NUM_PROXIES": env_int("SIGHTLINE_NUM_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("SIGHTLINE_ANON_RATE", "60/min"),
        "user": os.environ.get("SIGHTLINE_USER_RATE", "1200/min"),
        "login": LOGIN_RATE,
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("SIGHTLINE_ACCESS_TOKEN_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("SIGHTLINE_REFRESH_TOKEN_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "USER_ID_FIELD": "id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Sightline API",
    "DESCRIPTION": "Face and image recognition: uploads, jobs, people, faces, reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The refusals every operation can give, in the API's one error body (config/schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.document_refusals"],
}

# --- Files -------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
SIGHTLINE_STORAGE = os.environ.get("SIGHTLINE_STORAGE", "local")
_media_storage = {"BACKEND": "media.storage.LocalStorage"}  # no partial files; a full disk is a 507
if SIGHTLINE_STORAGE == "s3":
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("SIGHTLINE_S3_BUCKET", ""),
            "endpoint_url": os.environ.get("SIGHTLINE_S3_ENDPOINT_URL") or None,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
elif SIGHTLINE_STORAGE != "local":
    raise ImproperlyConfigured("SIGHTLINE_STORAGE must be 'local' or 's3'.")
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

SIGHTLINE_MAX_UPLOAD_BYTES = env_int("SIGHTLINE_MAX_UPLOAD_MB", 50) * 1024 * 1024
SIGHTLINE_MAX_VIDEO_BYTES = env_int("SIGHTLINE_MAX_VIDEO_MB", 500) * 1024 * 1024
SIGHTLINE_MAX_IMAGE_PIXELS = env_int("SIGHTLINE_MAX_IMAGE_PIXELS", 89_478_485)
# Workers decode videos a batch of frames at a time: a frame size bound is a memory bound.
SIGHTLINE_MAX_VIDEO_PIXELS = env_int("SIGHTLINE_MAX_VIDEO_PIXELS", 7680 * 4320)
SIGHTLINE_MAX_VIDEO_SECONDS = env_int("SIGHTLINE_MAX_VIDEO_SECONDS", 600)
# Each upload is stored, decoded and queued: one user in a loop must not fill the disk and the
# queue for everyone (config.throttling).
SIGHTLINE_UPLOAD_RATE = os.environ.get("SIGHTLINE_UPLOAD_RATE", "120/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", SIGHTLINE_UPLOAD_RATE):
    raise ImproperlyConfigured("SIGHTLINE_UPLOAD_RATE must be a count per period, such as 120/min or 2000/day.")
# Request bodies above this are refused before they reach a view.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Inference ---------------------------------------------------------------------------

SIGHTLINE_DEVICE = os.environ.get("SIGHTLINE_DEVICE", "auto").strip().lower() or "auto"
if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", SIGHTLINE_DEVICE):
    raise ImproperlyConfigured("SIGHTLINE_DEVICE must be auto, cpu or cuda, or cuda:N for one GPU.")
# Processes `manage.py serve` starts (0: from the cores and GPUs; see its process plan).
SIGHTLINE_INFERENCE_WORKERS = env_int("SIGHTLINE_INFERENCE_WORKERS", 0)
SIGHTLINE_WEB_PROCESSES = env_int("SIGHTLINE_WEB_PROCESSES", 0)
if SIGHTLINE_INFERENCE_WORKERS < 0 or SIGHTLINE_WEB_PROCESSES < 0:
    raise ImproperlyConfigured("SIGHTLINE_INFERENCE_WORKERS and SIGHTLINE_WEB_PROCESSES must be 0 (automatic) or more.")
SIGHTLINE_MATCH_THRESHOLD = float(os.environ.get("SIGHTLINE_MATCH_THRESHOLD", "0.6"))
# On the shared photos, real faces score 0.43-0.96 and the detector's background false
# positives 0.24-0.35: below the floor, a face does not make "exactly one face" ambiguous.
SIGHTLINE_ENROL_MIN_QUALITY = float(os.environ.get("SIGHTLINE_ENROL_MIN_QUALITY", "0.4"))
# Unknown faces cluster into people without a name: neighbours within this distance (dlib's
# Euclidean; 0.6 is "same person" for matching, clustering is stricter so it never mixes two
# people), at least this many faces to form one, and only clear faces seed one.
SIGHTLINE_CLUSTER_DISTANCE = float(os.environ.get("SIGHTLINE_CLUSTER_DISTANCE", "0.5"))
SIGHTLINE_CLUSTER_MIN_FACES = env_int("SIGHTLINE_CLUSTER_MIN_FACES", 2)
SIGHTLINE_CLUSTER_MIN_QUALITY = float(os.environ.get("SIGHTLINE_CLUSTER_MIN_QUALITY", str(SIGHTLINE_ENROL_MIN_QUALITY)))
SIGHTLINE_CLUSTER_NEIGHBOURS = env_int("SIGHTLINE_CLUSTER_NEIGHBOURS", 16)
# Database connections a full recluster searches neighbours on at once (one core each).
SIGHTLINE_CLUSTER_THREADS = env_int("SIGHTLINE_CLUSTER_THREADS", 2)
# When the nightly full recluster of every owner's faces runs (cron syntax, UTC).
SIGHTLINE_RECLUSTER_CRON = os.environ.get("SIGHTLINE_RECLUSTER_CRON", "30 3 * * *")
# Faces are tracked from one analysed frame to the next: 2 a second follows people walking.
SIGHTLINE_VIDEO_FPS = float(os.environ.get("SIGHTLINE_VIDEO_FPS", "2"))
if SIGHTLINE_VIDEO_FPS <= 0:
    raise ImproperlyConfigured("SIGHTLINE_VIDEO_FPS must be positive.")
# Faces in video can be found on smaller frames (this many pixels on their long side), then
# aligned from the full frame: 960 doubles the speed on 1080p, but faces need 40 pixels instead
# of 20 and the coarser landmarks cost accuracy (docs/BENCHMARKS.md), so full size by default.
SIGHTLINE_VIDEO_DETECT_SIDE = env_int("SIGHTLINE_VIDEO_DETECT_SIDE", 0)
SIGHTLINE_VIDEO_MAX_FRAMES = env_int("SIGHTLINE_VIDEO_MAX_FRAMES",
                                     int(SIGHTLINE_MAX_VIDEO_SECONDS * SIGHTLINE_VIDEO_FPS) + 1)
SIGHTLINE_VIDEO_FRAME_BATCH = env_int("SIGHTLINE_VIDEO_FRAME_BATCH", 16)
SIGHTLINE_PHOTO_BATCH = env_int("SIGHTLINE_PHOTO_BATCH", 8)
if SIGHTLINE_PHOTO_BATCH < 1:
    raise ImproperlyConfigured("SIGHTLINE_PHOTO_BATCH must be at least 1.")

# --- Reports and search ------------------------------------------------------------------

# Reports are cached per owner and filters; a job of the owner that finishes renews them at once.
SIGHTLINE_REPORT_CACHE_SECONDS = env_int("SIGHTLINE_REPORT_CACHE_SECONDS", 60)
# Cosine distance of MobileNetV2 image embeddings. On the shared photos, the same picture
# resized, recompressed or slightly cropped is 0.0004-0.04 away; different photos 0.098 or more.
SIGHTLINE_DUPLICATE_DISTANCE = float(os.environ.get("SIGHTLINE_DUPLICATE_DISTANCE", "0.05"))
# MobileNetV2's top-5 on an ordinary photo is mostly guesses under 5 %; below this a tag says
# nothing true about the picture (recognition/tagging.py says which labels are never kept).
SIGHTLINE_TAG_MIN_PROBABILITY = float(os.environ.get("SIGHTLINE_TAG_MIN_PROBABILITY", "0.15"))

# --- Jobs --------------------------------------------------------------------------------

# Seconds between retries of a job that hit a transient error; one retry per entry.
SIGHTLINE_JOB_RETRY_INTERVALS = [int(s) for s in env_list("SIGHTLINE_JOB_RETRY_INTERVALS", "10,60,300")]
SIGHTLINE_JOB_TIMEOUT_SECONDS = env_int("SIGHTLINE_JOB_TIMEOUT_SECONDS", 3600)
# How often each worker looks for jobs no worker will finish (Redis flushed, a worker killed).
SIGHTLINE_WORKER_MAINTENANCE_SECONDS = env_int("SIGHTLINE_WORKER_MAINTENANCE_SECONDS", 60)
# How long recognize/verify/enrol requests wait for the realtime worker before answering 503.
SIGHTLINE_REALTIME_TIMEOUT_SECONDS = env_int("SIGHTLINE_REALTIME_TIMEOUT_SECONDS", 30)
SIGHTLINE_REALTIME_MAX_BYTES = env_int("SIGHTLINE_REALTIME_MAX_MB", 10) * 1024 * 1024

# --- Security ----------------------------------------------------------------------------

# Served over HTTPS (directly or behind a TLS proxy). `manage.py serve` runs Daphne over plain
# HTTP on loopback and sets 0 for its children: secure cookies would never be sent back there.
HTTPS = env_bool("SIGHTLINE_HTTPS", True) and not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "config.views.csrf_failure"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every HTML answer: config.security.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if HTTPS:
    SECURE_SSL_REDIRECT = env_bool("SIGHTLINE_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SIGHTLINE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Health probes come from the load balancer over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Everything else ---------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "config.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["stdout"], "level": os.environ.get("SIGHTLINE_LOG_LEVEL", "INFO")},
    "loggers": {
        # Our request middleware logs every request once, with timing; Django's duplicate is noise.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
