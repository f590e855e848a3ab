"""Uploads per user (``SIGHTLINE_UPLOAD_RATE``): over the rate, the API and the dashboard answer
429 with ``Retry-After`` and the same message, and store nothing; one bucket per user, shared by
both; other requests are not counted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from media.models import Asset
from tests.conftest import REPO_ROOT
from tests.integration.recognition.api_helpers import jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def two_uploads_a_minute(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SIGHTLINE_UPLOAD_RATE = "2/min"


def photo(seed: int) -> SimpleUploadedFile:
    return SimpleUploadedFile(f"photo-{seed}.jpg", jpeg_bytes(seed=seed), content_type="image/jpeg")


def api_upload(api_client, user, seed: int):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return api_client.post("/api/v1/assets/", {"file": photo(seed)}, format="multipart")


def page_upload(user, seed: int, json: bool = True):
    browser = Client()
    browser.force_login(user)
    headers = {"HTTP_ACCEPT": "application/json"} if json else {}
    return browser.post("/upload/", {"files": photo(seed)}, **headers)


def assert_throttled(response):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert (body["status"], body["code"]) == (429, "throttled")
    assert body["message"] == f"Too many uploads. Try again in {response['Retry-After']} seconds."
    return body


def test_the_api_refuses_uploads_over_the_rate_and_stores_nothing(api_client, user):
    assert [api_upload(api_client, user, seed).status_code for seed in (1, 2)] == [202, 202]

    over = api_upload(api_client, user, 3)

    assert_throttled(over)
    assert Asset.objects.filter(owner=user).count() == 2


def test_the_dashboard_answers_its_script_like_the_api(user):
    assert [page_upload(user, seed).status_code for seed in (1, 2)] == [200, 200]

    over = page_upload(user, 3)

    assert assert_throttled(over)["results"] == []
    assert Asset.objects.filter(owner=user).count() == 2


def test_a_plain_form_gets_a_page_that_says_when_to_try_again(user):
    page_upload(user, 1, json=False)
    page_upload(user, 2, json=False)

    over = page_upload(user, 3, json=False)

    assert over.status_code == 429
    assert over["Content-Type"].startswith("text/html")
    assert f"Too many uploads. Try again in {over['Retry-After']} seconds." in over.content.decode()


def test_the_api_and_the_dashboard_share_one_budget(api_client, user):
    assert api_upload(api_client, user, 1).status_code == 202
    assert page_upload(user, 2).status_code == 200

    assert_throttled(page_upload(user, 3))
    assert_throttled(api_upload(api_client, user, 4))


def test_each_user_has_a_budget_of_their_own(api_client, user, other_user):
    for seed in (1, 2):
        api_upload(api_client, user, seed)
    assert_throttled(api_upload(api_client, user, 3))

    assert api_upload(api_client, other_user, 4).status_code == 202


def test_other_requests_are_not_counted(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    for _ in range(5):
        assert api_client.get("/api/v1/assets/").status_code == 200

    assert [api_upload(api_client, user, seed).status_code for seed in (1, 2)] == [202, 202]


def test_a_rate_that_is_not_one_refuses_to_start():
    script = "import django; django.setup()"
    # A key of its own: whichever servers the environment names, only the rate may be wrong.
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "k" * 50, "SIGHTLINE_UPLOAD_RATE": "lots",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SIGHTLINE_UPLOAD_RATE must be a count per period" in result.stderr
