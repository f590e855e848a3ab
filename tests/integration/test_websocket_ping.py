"""The WebSocket wiring over the real Redis channel layer: session auth, JWT auth, rejection."""

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from config.asgi import application
from config.consumers import CLOSE_UNAUTHENTICATED

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


async def _ping_pong(communicator, user):
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello == {"type": "hello", "user": user.pk}
    await communicator.send_json_to({"type": "ping", "data": "marco"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong", "data": "marco", "user": user.pk}
    await communicator.disconnect()


async def test_ping_with_session_cookie(user):
    from asgiref.sync import sync_to_async

    browser = Client()
    await sync_to_async(browser.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[ORIGIN, (b"cookie", cookie.encode())])
    await _ping_pong(communicator, user)


async def test_ping_with_jwt_query_parameter(user):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(lambda: str(RefreshToken.for_user(user).access_token))()
    communicator = WebsocketCommunicator(application, f"/ws/ping/?token={token}", headers=[ORIGIN])
    await _ping_pong(communicator, user)


@pytest.mark.parametrize("path", ["/ws/ping/", "/ws/ping/?token=not-a-jwt"])
async def test_anonymous_connection_is_rejected(path):
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    connected, code = await communicator.connect(timeout=5)
    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


async def test_refresh_token_is_not_accepted_as_access_token(user):
    from asgiref.sync import sync_to_async

    refresh = await sync_to_async(lambda: str(RefreshToken.for_user(user)))()
    communicator = WebsocketCommunicator(application, f"/ws/ping/?token={refresh}", headers=[ORIGIN])
    connected, code = await communicator.connect(timeout=5)
    assert not connected


async def test_foreign_origin_is_rejected(user):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(lambda: str(RefreshToken.for_user(user).access_token))()
    communicator = WebsocketCommunicator(
        application, f"/ws/ping/?token={token}", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
