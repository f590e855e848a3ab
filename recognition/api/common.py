"""What the API modules share: the WebSocket docs, response shapes for files, image caching,
and photo analysis on the realtime worker."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

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

# An asset's original file goes back with the type it was stored with (a photo or a video),
# whole or the byte range asked for (206); a range past its end is 416.
BINARY_FILE = {(200, "image/*"): OpenApiTypes.BINARY, (200, "video/*"): OpenApiTypes.BINARY,
               (206, "image/*"): OpenApiTypes.BINARY, (206, "video/*"): OpenApiTypes.BINARY,
               404: bodies.ErrorSerializer,
               416: OpenApiResponse(description="The range starts past the end of the file.")}
JPEG = {(200, "image/jpeg"): OpenApiTypes.BINARY, 404: bodies.ErrorSerializer}
IMAGE_MAX_AGE_SECONDS = 3600
SIMILAR_LIMIT = 20
SIMILAR_MAX_LIMIT = 100


_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def ranged_file_response(request, fileobj, *, filename: str, content_type: str) -> HttpResponse:
    """The stored file, or the one byte range the request asks for (206). Browsers seek in a
    video by asking for ranges: a server that always sends the whole file leaves the video
    unseekable in Chromium. Several ranges, an ``If-Range`` (no validator here to check it
    against) or a malformed header get the whole file, as RFC 9110 allows."""
    size = fileobj.size
    wanted = request.headers.get("Range", "")
    match = _BYTE_RANGE.fullmatch(wanted.strip()) if wanted and "If-Range" not in request.headers else None
    if match is None or match.groups() == ("", ""):
        response = FileResponse(fileobj, filename=filename, content_type=content_type)
    else:
        first, last = match.groups()
        if first:  # bytes=a-b or bytes=a-
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:  # bytes=-n: the last n bytes
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            fileobj.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            response["Accept-Ranges"] = "bytes"
            return response
        fileobj.seek(start)
        response = FileResponse(_Window(fileobj, end - start + 1), filename=filename, content_type=content_type,
                                status=206)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


class _Window:
    """``length`` bytes of an open file from where it stands, read like a file."""

    def __init__(self, fileobj, length: int):
        self._file, self._left = fileobj, length

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size) if size else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


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
