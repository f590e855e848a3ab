"""Security headers on every kind of answer, and a Content-Security-Policy on HTML that our pages
live with: no inline script anywhere in them, only our own files.

(HSTS and the HTTPS redirect are production settings, checked in ``test_settings``; the
browser tests fail on any console error, a blocked script or style included.)
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from recognition.models import Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset

pytestmark = pytest.mark.django_db

EVERY_ANSWER = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.fixture
def library(user, settings, tmp_path):
    """A photo with a named face: the pages show boxes, names, thumbnails."""
    settings.MEDIA_ROOT = tmp_path
    asset = stored_asset(user, jpeg_bytes(), "party.jpg")
    make_face(asset, subject=Subject.objects.create(owner=user, name="Ada"), is_example=True)
    return asset


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def policy(response) -> dict[str, list[str]]:
    """``Content-Security-Policy`` as {directive: sources}."""
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = sources
    return directives


ANSWERS = {
    "login page": (False, "/login/", {}),
    "dashboard": (True, "/", {}),
    "missing page": (True, "/no-such-page/", {}),
    "API JSON": (True, "/api/v1/me/", {"HTTP_ACCEPT": "application/json"}),
    "API error": (False, "/api/v1/me/", {"HTTP_ACCEPT": "application/json"}),
    "API file": (True, "thumbnail", {}),
    "health probe": (False, "/healthz", {}),
    "Swagger UI": (False, "/api/docs/", {}),
    "admin login": (False, "/admin/login/", {}),
}


# drf-spectacular opens Swagger UI to cross-origin openers on purpose, for OAuth2 sign-in popups
# (Sightline's API uses none); the page shows the schema, nothing of anyone's.
EXCEPTIONS = {"/api/docs/": {"Cross-Origin-Opener-Policy": "unsafe-none"}}


@pytest.mark.parametrize(("signed_in", "url", "headers"), [pytest.param(*a, id=n) for n, a in ANSWERS.items()])
def test_every_answer_carries_the_headers(browser, library, signed_in, url, headers):
    client = browser if signed_in else Client()
    url = f"/api/v1/assets/{library.pk}/thumbnail/" if url == "thumbnail" else url

    response = client.get(url, **headers)

    expected = {**EVERY_ANSWER, **EXCEPTIONS.get(url, {})}
    assert response.status_code < 500
    assert {name: response.get(name) for name in EVERY_ANSWER} == expected


@pytest.mark.parametrize("url", ["/", "/people/", "/library/", "/reports/", "asset", "/no-such-page/"])
def test_our_pages_get_a_strict_policy(browser, library, url):
    response = browser.get(f"/assets/{library.pk}/" if url == "asset" else url)

    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval, nobody else's
    assert directives["style-src"] == ["'self'"]  # no <style> elements
    assert directives["style-src-attr"] == ["'unsafe-inline'"]  # boxes, timeline bars, chart swatches
    for own in ("img-src", "media-src", "font-src", "form-action"):
        assert directives[own] == ["'self'"], own
    assert directives["connect-src"] == ["'self'", "ws://testserver"]  # fetch() and our WebSocket
    assert directives["object-src"] == directives["base-uri"] == directives["frame-ancestors"] == ["'none'"]


def test_over_https_the_websocket_is_wss(browser):
    response = browser.get("/", secure=True)
    assert policy(response)["connect-src"] == ["'self'", "wss://testserver"]


@pytest.mark.parametrize("url", ["/", "/people/", "/library/", "/reports/", "/reports/daily/", "asset", "/login/",
                                 "/register/"])
def test_our_pages_run_only_our_own_script_files(browser, library, url):
    """What the strict policy would block, none of our pages has: inline scripts or handlers,
    ``javascript:`` links, ``<style>`` elements, files from elsewhere."""
    response = (Client() if url in ("/login/", "/register/") else browser).get(
        f"/assets/{library.pk}/" if url == "asset" else url)
    html = response.content.decode()

    assert response.status_code == 200
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert all(re.search(r'\bsrc="/static/[^"]+"', attributes) and not body.strip() for attributes, body in scripts)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "an inline event handler"
    assert "javascript:" not in html
    assert "<style" not in html
    assert not re.search(r'(?:src|href|action)="(?:https?:)?//', html), "a file from another site"


def test_django_admin_pages_get_the_strict_policy(staff_user):
    admin = Client()
    admin.force_login(staff_user)
    for url in ("/admin/login/", "/admin/", "/admin/recognition/face/", "/admin/accounts/user/add/"):
        directives = policy(admin.get(url) if url != "/admin/login/" else Client().get(url))
        assert (directives["script-src"], directives["style-src"]) == (["'self'"], ["'self'"]), url


@pytest.mark.parametrize("url", ["/admin/django_rq/dashboard/", "/api/docs/"])
def test_pages_that_are_not_ours_get_inline_code_and_nothing_more(staff_user, url):
    """django_rq's dashboard scripts and Swagger UI's init script are inline; the rest still holds."""
    admin = Client()
    admin.force_login(staff_user)
    directives = policy(admin.get(url))
    assert directives["script-src"] == directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["frame-ancestors"] == directives["object-src"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]


def test_the_browsable_api_may_colour_its_code_but_runs_only_files(browser):
    directives = policy(browser.get("/api/v1/me/", HTTP_ACCEPT="text/html"))
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["script-src"] == ["'self'"]


def test_answers_that_are_not_pages_carry_no_policy(browser, library):
    for url in ("/api/v1/me/", f"/api/v1/assets/{library.pk}/thumbnail/", "/healthz"):
        assert "Content-Security-Policy" not in browser.get(url, HTTP_ACCEPT="application/json"), url


def test_a_host_we_do_not_serve_gets_its_400_with_the_policy():
    response = Client(HTTP_HOST="evil.example").get("/login/")
    assert response.status_code == 400
    assert policy(response)["connect-src"] == ["'self'"]
