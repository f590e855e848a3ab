"""Tokens that must open nothing: each is refused by the API (401, ``WWW-Authenticate: Bearer``,
the JSON error body) and by the WebSocket (closed with 4401 before it is accepted).

Crafted with PyJWT, as an attacker would: unsigned (``alg: none``), expired, signed with another
key or another algorithm, with its signature removed or its payload changed, a refresh token
used as an access token, no expiry at all, and genuine tokens of a deactivated or deleted user.
A genuine access token is the control: accepted by both.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from config.asgi import application
from config.consumers import CLOSE_UNAUTHENTICATED

API_URL = "/api/v1/assets/"
WEBSOCKET_PATH = "/ws/jobs/"
ANOTHER_KEY = "not the server's key, long enough for HS256 and HS512 use"


def claims(user, **changes) -> dict:
    """An access token's claims as simplejwt writes them; ``None`` leaves a claim out."""
    now = datetime.now(timezone.utc)
    values = {"token_type": "access", "exp": int((now + timedelta(minutes=5)).timestamp()),
              "iat": int(now.timestamp()), "jti": "0123456789abcdef0123456789abcdef", "user_id": user.pk}
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def signed(payload: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"] if key is None else key, algorithm=algorithm)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def expired(user, staff):
    an_hour_ago = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp())
    return signed(claims(user, exp=an_hour_ago, iat=an_hour_ago - 900))


def signature_removed(user, staff):
    header, payload, _ = str(AccessToken.for_user(user)).split(".")
    return f"{header}.{payload}."


def payload_changed(user, staff):
    """Alice's genuine signature over claims that make her staff."""
    header, _, signature = str(AccessToken.for_user(user)).split(".")
    return f"{header}.{b64(claims(user, user_id=staff.pk))}.{signature}"


def deactivated(user, staff):
    token = str(AccessToken.for_user(user))
    user.is_active = False
    user.save(update_fields=["is_active"])
    return token


def deleted(user, staff):
    someone = type(user).objects.create_user(email="gone@example.com", password="a long passphrase")
    token = str(AccessToken.for_user(someone))
    someone.delete()
    return token


REFUSED = {
    "alg none": lambda user, staff: jwt.encode(claims(user), None, algorithm="none"),
    "alg none, upper case": lambda user, staff: f"{b64({'alg': 'NONE', 'typ': 'JWT'})}.{b64(claims(user))}.",
    "expired": expired,
    "forged: another key": lambda user, staff: signed(claims(user), key=ANOTHER_KEY),
    "forged: HS512 with our key": lambda user, staff: signed(claims(user), algorithm="HS512"),
    "forged: signature removed": signature_removed,
    "forged: payload changed": payload_changed,
    "refresh token as access token": lambda user, staff: str(RefreshToken.for_user(user)),
    "no expiry": lambda user, staff: signed(claims(user, exp=None)),
    "not a token": lambda user, staff: "not-a-jwt",
    "deactivated user": deactivated,
    "deleted user": deleted,
}


def refused_cases():
    return [pytest.param(make, id=name) for name, make in REFUSED.items()]


# --- API ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_genuine_access_token_opens_the_api(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    assert api_client.get(API_URL).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("make_token", refused_cases())
def test_the_api_refuses(api_client, user, staff_user, make_token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, staff_user)}")

    response = api_client.get(API_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and body["message"] and "results" not in body


@pytest.mark.django_db
def test_the_api_does_not_read_tokens_from_the_url(api_client, user):
    """Addresses end up in logs and in Referer headers: the API takes a token from its header only."""
    assert api_client.get(API_URL, {"token": str(AccessToken.for_user(user))}).status_code == 401


# --- WebSocket ------------------------------------------------------------------------------

async def connect_with(token: str):
    communicator = WebsocketCommunicator(application, f"{WEBSOCKET_PATH}?token={token}")
    connected, code = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected, code


# Committed data: the WebSocket reads users on another thread, with a connection of its own.
@pytest.mark.django_db(transaction=True)
async def test_a_genuine_access_token_opens_the_websocket(user):
    token = await sync_to_async(lambda: str(AccessToken.for_user(user)))()
    connected, _ = await connect_with(token)
    assert connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("make_token", refused_cases())
async def test_the_websocket_refuses(user, staff_user, make_token):
    token = await sync_to_async(make_token)(user, staff_user)

    connected, code = await connect_with(token)

    assert (connected, code) == (False, CLOSE_UNAUTHENTICATED)
