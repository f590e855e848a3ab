"""Login, sign-up, logout and dashboard pages (session auth, CSRF, throttling)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # the `user` fixture's password


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is not what these tests are about.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def csrf_client_with_token(url):
    """A client that enforces CSRF like a browser session, and the token its form would send."""
    client = Client(enforce_csrf_checks=True)
    client.get(url)
    return client, client.cookies[settings.CSRF_COOKIE_NAME].value


def login_limit():
    return int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])


# --- dashboard and redirects ----------------------------------------------------------------


def test_dashboard_redirects_anonymous_visitors_to_login(client):
    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next=/"


def test_dashboard_greets_the_user_and_says_nothing_is_uploaded(client, user):
    user.display_name = "Alice"
    user.save()
    client.force_login(user)

    response = client.get(reverse("dashboard"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Hello, Alice" in html
    assert "Nothing uploaded yet" in html
    assert "/static/css/sightline.css" in html
    assert 'action="/logout/"' in html
    assert "/admin/" not in html  # not staff


def test_staff_see_the_admin_link(client, staff_user):
    client.force_login(staff_user)
    assert 'href="/admin/"' in client.get(reverse("dashboard")).content.decode()


def test_anonymous_nav_offers_login_and_sign_up(client):
    html = client.get(reverse("accounts:login")).content.decode()
    assert 'href="/register/"' in html and 'href="/api/docs/"' in html
    assert "Log out" not in html


def test_the_stylesheet_is_served_and_loads_nothing_remote(client):
    from django.contrib.staticfiles import finders

    css = open(finders.find("css/sightline.css")).read()
    assert "@import" not in css and "url(" not in css and "http" not in css


# --- login ----------------------------------------------------------------------------------


def test_login_page_asks_for_an_email(client):
    html = client.get(reverse("accounts:login")).content.decode()
    assert 'type="email"' in html and ">Email<" in html


def test_login_with_csrf_token_lands_on_the_dashboard(user):
    client, token = csrf_client_with_token(reverse("accounts:login"))

    response = client.post(
        reverse("accounts:login"),
        {"username": "Alice@Example.com", "password": PASSWORD, "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    assert response.context["user"] == user


def test_login_redirects_to_next(client, user):
    response = client.post(
        f"{reverse('accounts:login')}?next=/api/docs/", {"username": user.email, "password": PASSWORD, "next": "/api/docs/"}
    )
    assert response["Location"] == "/api/docs/"


def test_login_post_without_csrf_token_is_rejected(user):
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_wrong_password_shows_an_error(client, user):
    response = client.post(reverse("accounts:login"), {"username": user.email, "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()


def test_login_page_is_throttled_after_too_many_attempts(client, user):
    for _ in range(login_limit()):
        assert client.post(reverse("accounts:login"), {"username": user.email, "password": "nope"}).status_code == 200

    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert "Too many login attempts. Please wait" in response.content.decode()
    assert "_auth_user_id" not in client.session  # the right password did not get through


def test_page_and_api_share_the_login_budget_for_an_email(client, api_client, user):
    for n in range(login_limit()):
        api_client.post(
            reverse("auth-token"), {"email": user.email, "password": "nope"}, format="json", REMOTE_ADDR=f"10.0.0.{n}"
        )

    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})

    assert response.status_code == 429


def test_logged_in_user_visiting_login_goes_to_the_dashboard(client, user):
    client.force_login(user)
    assert client.get(reverse("accounts:login"))["Location"] == reverse("dashboard")


# --- sign-up --------------------------------------------------------------------------------


def test_register_creates_the_account_and_logs_in(django_user_model):
    client, token = csrf_client_with_token(reverse("accounts:register"))

    response = client.post(
        reverse("accounts:register"),
        {
            "email": "Carol@Example.com",
            "display_name": "Carol",
            "password1": "a long enough secret",
            "password2": "a long enough secret",
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )

    carol = django_user_model.objects.get(email="carol@example.com")
    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    assert response.context["user"] == carol
    html = response.content.decode()
    assert "Hello, Carol" in html and "Your account is ready" in html


def test_register_without_csrf_token_is_rejected(django_user_model):
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        reverse("accounts:register"),
        {"email": "carol@example.com", "password1": "a long enough secret", "password2": "a long enough secret"},
    )

    assert response.status_code == 403
    assert not django_user_model.objects.filter(email="carol@example.com").exists()


def test_register_refuses_a_taken_email_and_weak_or_mismatched_passwords(client, user):
    taken = client.post(
        reverse("accounts:register"),
        {"email": "ALICE@example.com", "password1": "a long enough secret", "password2": "a long enough secret"},
    )
    weak = client.post(reverse("accounts:register"), {"email": "d@example.com", "password1": "12345", "password2": "12345"})
    mismatched = client.post(
        reverse("accounts:register"),
        {"email": "e@example.com", "password1": "a long enough secret", "password2": "another long secret"},
    )

    assert "An account with this email address already exists." in taken.content.decode()
    assert "This password is too short" in weak.content.decode()
    assert "didn’t match" in mismatched.content.decode()
    assert all(r.status_code == 200 for r in (taken, weak, mismatched))


def test_register_page_is_throttled(client):
    for n in range(login_limit()):
        client.post(reverse("accounts:register"), {"email": f"bad{n}"})

    response = client.post(reverse("accounts:register"), {"email": "late@example.com"})

    assert response.status_code == 429
    assert "Too many sign-up attempts" in response.content.decode()


# --- logout ---------------------------------------------------------------------------------


def test_logout_is_post_only_and_ends_the_session(client, user):
    client.force_login(user)

    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"), follow=True)

    assert response.redirect_chain == [(reverse("accounts:login"), 302)]
    assert "You have been logged out." in response.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302


def test_logout_without_csrf_token_is_rejected(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    assert client.post(reverse("accounts:logout")).status_code == 403
    assert client.get(reverse("dashboard")).status_code == 200
