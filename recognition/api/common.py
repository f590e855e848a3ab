"""What the API modules share: the WebSocket docs, response shapes for files, image caching,
and photo analysis on the realtime worker."""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes

from media.models import Asset
from media.validation import RejectedUpload, probe_file
from recognition import jobs, services
from recognition import serializers as bodies

JOB_EVENTS_DOC = """

**Live progress over WebSocket.** Connect to `ws/jobs/` (every job of yours; every user's for
staff) or `ws/jobs/<id>/` (one job; closed with code 4404 when it is not yours). Authenticate
with the session cookie or with `?token=<JWT access token>`. The current state of the job(s)
is sent first, then one JSON message per change:

    {"type": "job.stage", "job": 12, "asset": 7, "stage": "detecting", "progress": 10,
     "at": "2026-11-22T10:00:00.123456+00:00", "error": null}

`stage` goes `uploading → queued → detecting → enhancing → recognizing → completed`, or ends
`failed` with `error` set: `uploading` while the file is received and stored, `queued` while it
waits for a worker (a re-run starts there), then the worker's stages. Send `{"type": "state"}` to get the current state again."""

# An asset's original file goes back with the type it was stored with (a photo or a video).
BINARY_FILE = {(200, "image/*"): OpenApiTypes.BINARY, (200, "video/*"): OpenApiTypes.BINARY,
               404: bodies.ErrorSerializer}
JPEG = {(200, "image/jpeg"): OpenApiTypes.BINARY, 404: bodies.ErrorSerializer}
IMAGE_MAX_AGE_SECONDS = 3600
SIMILAR_LIMIT = 20
SIMILAR_MAX_LIMIT = 100


def browser_cached(response):
    """Let the user's browser (never a shared cache) keep an image for an hour: an asset's file
    and thumbnail never change, a face's crop hardly does, and the pages show dozens of crops,
    each cut from a decoded photo or video frame."""
    patch_cache_control(response, private=True, max_age=IMAGE_MAX_AGE_SECONDS)
    return response


def analyze_photo_upload(upload, label: str = "The photo") -> dict:
    """Validate one photo in this process (cheap, clear 4xx), then find its faces on the
    realtime worker. Raises RejectedUpload or the realtime errors."""
    limit = settings.SIGHTLINE_REALTIME_MAX_BYTES
    if upload.size > limit:
        raise RejectedUpload(f"{label} is {upload.size} bytes; the largest accepted here is {limit} bytes.",
                             "too_large", 413)
    if probe_file(upload, upload.size).kind != Asset.Kind.IMAGE:
        raise RejectedUpload(f"{label} must be an image, not a video.", "not_an_image", 415)
    upload.seek(0)
    analysis = services.run_realtime(jobs.analyze_photo_bytes, upload.read())
    if "rejected" in analysis:
        rejected = analysis["rejected"]
        raise RejectedUpload(rejected["message"], rejected["code"], rejected["status"])
    return analysis
