"""Accounts API: sign-up, JWT tokens (simplejwt), logout, the current user."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView

from accounts.serializers import (
    LogoutSerializer,
    RegisterSerializer,
    RegistrationResponseSerializer,
    UserSerializer,
)
from accounts.throttling import LoginEmailRateThrottle, LoginIPRateThrottle, RegistrationRateThrottle


@extend_schema(tags=["auth"], responses={201: RegistrationResponseSerializer})
class RegisterView(generics.CreateAPIView):
    """Create an account and answer with it and a fresh access/refresh token pair."""

    serializer_class = RegisterSerializer
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [AnonRateThrottle, RegistrationRateThrottle]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.save()
        refresh = RefreshToken.for_user(user)
        body = {
            "user": UserSerializer(user).data,
            "access": str(refresh.access_token),
            "refresh": str(refresh),
        }
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class TokenObtainView(TokenObtainPairView):
    """Exchange email and password for an access/refresh token pair (throttled per IP and per email)."""

    throttle_classes = [AnonRateThrottle, LoginIPRateThrottle, LoginEmailRateThrottle]


@extend_schema(tags=["auth"])
class TokenRefreshRotateView(TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted."""


@extend_schema(tags=["auth"])
class TokenCheckView(TokenVerifyView):
    """Check that a token is valid (signature, expiry, not blacklisted)."""


@extend_schema(
    tags=["auth"],
    request=LogoutSerializer,
    responses={205: OpenApiResponse(description="Refresh token revoked.")},
)
class LogoutView(generics.GenericAPIView):
    """Revoke a refresh token of the current user. Access tokens expire on their own (minutes)."""

    serializer_class = LogoutSerializer
    permission_classes = [IsAuthenticated]

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(status=status.HTTP_205_RESET_CONTENT)


@extend_schema_view(get=extend_schema(tags=["auth"]), patch=extend_schema(tags=["auth"]))
class MeView(generics.RetrieveUpdateAPIView):
    """The signed-in user; PATCH changes the display name."""

    serializer_class = UserSerializer
    permission_classes = [IsAuthenticated]
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        return self.request.user
