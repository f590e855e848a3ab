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


async def _session_cookie(user) -> bytes:
    from asgiref.sync import sync_to_async

    browser = Client()
    await sync_to_async(browser.force_login)(user)
    return f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def _token(user) -> str:
    from asgiref.sync import sync_to_async

    return await sync_to_async(lambda: str(RefreshToken.for_user(user).access_token))()


@pytest.mark.parametrize("headers", [[], [(b"origin", b"http://evil.example")]], ids=["no origin", "foreign origin"])
async def test_a_token_needs_no_origin_check(user, headers):
    """API clients send no Origin; a foreign page cannot have the user's token."""
    communicator = WebsocketCommunicator(application, f"/ws/ping/?token={await _token(user)}", headers=headers)
    await _ping_pong(communicator, user)


@pytest.mark.parametrize("origin", [None, b"http://evil.example"], ids=["no origin", "foreign origin"])
async def test_a_session_cookie_from_elsewhere_is_refused(user, origin):
    """Browsers send cookies with a WebSocket any site opens: only our origin may use them."""
    headers = [(b"cookie", await _session_cookie(user))] + ([(b"origin", origin)] if origin else [])
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_a_bad_token_is_not_rescued_by_a_session_cookie(user):
    headers = [ORIGIN, (b"cookie", await _session_cookie(user))]
    communicator = WebsocketCommunicator(application, "/ws/ping/?token=forged", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    assert not connected and code == CLOSE_UNAUTHENTICATED
