"""WebSocket authentication: the session cookie (browsers) or a JWT access token (API clients).

API clients pass the token as ``?token=<access>``: browsers' WebSocket API cannot set an
Authorization header. See ``SessionOrJWTAuth`` for which is used and when the origin matters.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
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


class SessionOrJWTAuth:
    """Pick the authentication, and with it the origin rule, by what the client sent.

    - ``?token=<access>``: the token alone decides (a cookie sent alongside is ignored). API
      clients send no ``Origin`` header as a rule, and a foreign page cannot forge a token it
      does not have, so no origin check applies. An invalid token leaves the connection
      anonymous, and consumers close anonymous connections.
    - otherwise the session cookie, behind the allowed-hosts origin check: a browser attaches
      cookies to a WebSocket opened by any site, so only our own pages (and no client without
      an ``Origin``) may use them. That check is what stops cross-site WebSocket hijacking.
    """

    def __init__(self, inner):
        self.inner = inner
        self.session_app = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        tokens = query.get("token")
        if tokens:
            scope = dict(scope, user=await user_from_access_token(tokens[0]), auth_method="jwt")
            return await self.inner(scope, receive, send)
        return await self.session_app(dict(scope, auth_method="session"), receive, send)
