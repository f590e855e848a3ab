"""Accounts API under /api/v1/."""

from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/register/", api.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", api.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", api.TokenRefreshRotateView.as_view(), name="auth-token-refresh"),
    path("auth/token/verify/", api.TokenCheckView.as_view(), name="auth-token-verify"),
    path("auth/logout/", api.LogoutView.as_view(), name="auth-logout"),
    path("me/", api.MeView.as_view(), name="me"),
]
