"""Login throttles: attempts are counted per client IP and per email address tried.

Counting by IP alone lets an attacker spread guesses for one account over many
addresses; counting by email alone lets one client try many accounts. Both buckets use
the ``login`` rate (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"]``).

The same classes serve the API (as DRF throttles) and the login page (through
``login_attempt_wait``), so a browser and an API client share one budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from rest_framework.throttling import SimpleRateThrottle

from accounts.models import canonical_email


def attempted_email(request) -> str:
    """The address a login request tries: ``email`` (API) or ``username`` (login form)."""
    # DRF requests carry parsed JSON in .data; plain Django requests have form data in .POST.
    data = getattr(request, "data", None)
    if not isinstance(data, Mapping):
        data = request.POST
    value = data.get("email") or data.get("username") or ""
    return canonical_email(value) if isinstance(value, str) else ""


class LoginIPRateThrottle(SimpleRateThrottle):
    scope = "login"
    cache_format = "throttle_login_ip_%(ident)s"

    def get_cache_key(self, request, view):
        return self.cache_format % {"ident": self.get_ident(request)}


class LoginEmailRateThrottle(SimpleRateThrottle):
    scope = "login"
    cache_format = "throttle_login_email_%(ident)s"

    def get_cache_key(self, request, view):
        email = attempted_email(request)
        if not email:
            return None  # nothing to count; the IP bucket still applies
        # Hashed: cache keys stay short and free of whatever characters were typed.
        return self.cache_format % {"ident": hashlib.sha256(email.encode()).hexdigest()}


class RegistrationRateThrottle(SimpleRateThrottle):
    """Sign-ups per client IP, at the login rate but in a bucket of their own."""

    scope = "login"
    cache_format = "throttle_register_ip_%(ident)s"

    def get_cache_key(self, request, view):
        return self.cache_format % {"ident": self.get_ident(request)}


LOGIN_THROTTLES = (LoginIPRateThrottle, LoginEmailRateThrottle)


def login_attempt_wait(request) -> float | None:
    """Record one login attempt; return seconds to wait if it is over the limit, else None."""
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, view=None):
            waits.append(throttle.wait() or 0)
    return max(waits) if waits else None
