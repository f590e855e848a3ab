"""Upload throttle: uploads per user, at ``SIGHTLINE_UPLOAD_RATE`` (default ``120/min``).

Every upload is stored, hashed, decoded and queued for a worker: one client in a loop could fill
the disk and the queue for everyone. The API (``POST /api/v1/assets/``, as a DRF throttle) and
the dashboard (``POST /upload/``, through ``upload_refusal``) share one bucket per user, as the
login throttles share theirs (``accounts.throttling``), and answer alike: 429, ``Retry-After``,
and the same message.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

from config.refusals import Refusal


class UploadRateThrottle(SimpleRateThrottle):
    scope = "upload"
    cache_format = "throttle_upload_user_%(ident)s"

    def get_rate(self):
        # Read at each request, not once at import as DRF's rates are: tests and operators change it.
        return settings.SIGHTLINE_UPLOAD_RATE

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None  # refused before it is counted
        return self.cache_format % {"ident": request.user.pk}


class UploadsThrottled(Throttled):
    """The API's answer: DRF puts the wait in ``Retry-After`` and the message."""

    default_detail = "Too many uploads."
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."


class TooManyUploads(Refusal):
    """The dashboard's answer, worded as the API's; ``retry_after`` in whole seconds."""

    code = UploadsThrottled.default_code
    status = UploadsThrottled.status_code

    def __init__(self, wait_seconds: float):
        throttled = UploadsThrottled(wait_seconds)
        self.retry_after = throttled.wait
        super().__init__(str(throttled.detail))


def upload_refusal(request) -> TooManyUploads | None:
    """Count one upload of the signed-in user: the refusal when it is over the rate, else None."""
    throttle = UploadRateThrottle()
    if throttle.allow_request(request, view=None):
        return None
    return TooManyUploads(throttle.wait() or 0)
