"""Pages: /login/, /logout/, /register/ (namespace "accounts"); the dashboard is recognition's."""

from django.urls import include, path

from accounts import views

account_pages = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("register/", views.RegisterView.as_view(), name="register"),
]

urlpatterns = [
    # Settings name the pages "accounts:login".
    path("", include((account_pages, "accounts"))),
]
