"""Error pages: styled for people, JSON for API clients, and never a hint of the URL conf."""

import pytest
from django.test import Client, RequestFactory

from config import views

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_our_page_not_djangos(user):
    client = Client()
    client.force_login(user)
    response = client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in html and "Go to the dashboard" in html
    assert "URLconf" not in html and "api/v1" not in html


def test_the_500_page_renders_without_a_request_context():
    response = views.server_error(RequestFactory().get("/somewhere/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_api_clients_get_json_errors():
    response = views.server_error(RequestFactory().get("/api/v1/assets/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"


def test_an_expired_form_says_so_in_words(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": user.email, "password": "x"})
    assert response.status_code == 403
    assert "Form expired" in response.content.decode()


def test_the_favicon_address_points_at_the_icon():
    response = Client().get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("favicon.svg")


def test_a_form_action_opened_by_its_address_is_our_page_saying_so(user):
    """require_POST answers an empty 405, which a browser shows as its own error page."""
    from django.urls import reverse

    from tests.integration.recognition.api_helpers import jpeg_bytes, stored_asset

    asset = stored_asset(user, jpeg_bytes())
    client = Client()
    client.force_login(user)
    response = client.get(reverse("asset-rerun", args=[asset.pk]))
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "<h1>Not possible this way</h1>" in response.content.decode()
    api = client.put(reverse("me"), {"display_name": "x"}, content_type="application/json")
    assert api.status_code == 405 and api.json()["code"] == "method_not_allowed"  # DRF's own, untouched
