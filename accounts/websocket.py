"""WebSocket authentication: the session cookie (browsers) or a JWT access token (API clients).

API clients pass the token as ``?token=<access>``: browsers' WebSocket API cannot set an
Authorization header. The session is tried first; a token, when given, must be valid or the
connection stays anonymous (and consumers reject anonymous connections).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken


@database_sync_to_async
def user_from_access_token(raw_token: str):
    try:
        token = AccessToken(raw_token)
    except TokenError:
        return AnonymousUser()
    user_id = token.get(api_settings.USER_ID_CLAIM)
    try:
        user = get_user_model().objects.get(**{api_settings.USER_ID_FIELD: user_id})
    except get_user_model().DoesNotExist:
        return AnonymousUser()
    return user if user.is_active else AnonymousUser()


class JWTAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            tokens = query.get("token")
            if tokens:
                scope = dict(scope, user=await user_from_access_token(tokens[0]))
        return await self.inner(scope, receive, send)


def SessionOrJWTAuthMiddlewareStack(inner):  # noqa: N802 - named like channels' stacks
    return AuthMiddlewareStack(JWTAuthMiddleware(inner))
