"""Content-Security-Policy for every HTML answer (Django 5.2 has none built in).

Our pages load only our own scripts, styles, images, videos and WebSocket: a script injected
into a page despite the templates' escaping would not run, could not load another, and could
not send what it reads anywhere else; no other site may frame a page (as ``X-Frame-Options``
says to older browsers). The only inline styling allowed is the ``style`` attribute, which
places face boxes and timeline bars and colours chart swatches.

Pages that are not ours need more, and get only that (``RELAXED``): inline ``<script>`` and
``<style>`` for django_rq's dashboard in the admin and for the Swagger UI at ``/api/docs/`` (its
init script), an inline ``<style>`` for DRF's browsable API (its code colours). Django's own
admin pages need nothing more than ours. Answers that are
not HTML (JSON, files) get no policy: they are never rendered as a page
(``X-Content-Type-Options: nosniff``).
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost

PAGES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "style-src-attr": "'unsafe-inline'",
    "img-src": "'self'",
    "media-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
INLINE_CODE = {"script-src": "'self' 'unsafe-inline'", "style-src": "'self' 'unsafe-inline'",
               "img-src": "'self' data:"}  # Swagger UI's icons
# Path prefix → what its pages need beyond PAGES; the first prefix that matches applies.
RELAXED = {
    "/admin/django_rq/": INLINE_CODE,
    "/api/docs/": INLINE_CODE,
    "/api/": {"style-src": "'self' 'unsafe-inline'"},
}


def policy_for(request) -> str:
    relaxed = next((extra for prefix, extra in RELAXED.items() if request.path.startswith(prefix)), {})
    directives = {**PAGES, **relaxed, "connect-src": f"'self' {_websocket_origin(request)}".strip()}
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


def _websocket_origin(request) -> str:
    """Our own WebSocket origin: ``'self'`` covers ws: and wss: only in CSP 3 browsers."""
    try:
        host = request.get_host()
    except DisallowedHost:  # the answer is Django's 400 for a host we do not serve
        return ""
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html") and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy_for(request)
        return response
