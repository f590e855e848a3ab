"""ASGI entry point: HTTP → Django, WebSocket → our consumers behind session-or-JWT auth
(origin-checked for the session, see ``accounts.websocket``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.websocket import SessionOrJWTAuth  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SessionOrJWTAuth(URLRouter(websocket_urlpatterns)),
    }
)
