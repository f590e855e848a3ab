"""API clients on the real server: a plain WebSocket client with only a JWT streams its jobs;
a session cookie works only from our own pages' origin."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from recognition import services
from tests.unit.media.samples import noisy_jpeg


def ws_url(site_server, path: str) -> str:
    return site_server.url.replace("http://", "ws://") + path


def session_cookie(user) -> str:
    browser = Client()
    browser.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_a_token_client_without_origin_streams_its_jobs_to_completion(site_server, user):
    token = str(RefreshToken.for_user(user).access_token)
    # Python's websockets sends no Origin header, like most clients outside a browser.
    with connect(ws_url(site_server, f"/ws/jobs/?token={token}"), open_timeout=10) as socket:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = services.upload(user, SimpleUploadedFile("noise.jpg", noisy_jpeg(), "image/jpeg"))
        stages = []
        while not stages or stages[-1] not in ("completed", "failed"):
            event = json.loads(socket.recv(timeout=60))
            if event["job"] == upload.job.pk:
                stages.append(event["stage"])
    assert stages[-1] == "completed", stages
    assert "recognizing" in stages or stages == ["completed"], stages


def test_a_token_is_accepted_from_any_origin_but_a_bad_one_is_not(site_server, user):
    token = str(RefreshToken.for_user(user).access_token)
    with connect(ws_url(site_server, f"/ws/ping/?token={token}"), origin="http://elsewhere.example") as socket:
        assert json.loads(socket.recv(timeout=10)) == {"type": "hello", "user": user.pk}
    with pytest.raises(Exception) as refused:
        with connect(ws_url(site_server, "/ws/ping/?token=forged"), open_timeout=10) as socket:
            socket.recv(timeout=10)
    assert "4401" in str(refused.value) or isinstance(refused.value, InvalidStatus)


@pytest.mark.parametrize("origin, accepted", [
    ("http://127.0.0.1", True),  # our own pages
    ("http://evil.example", False),  # cross-site WebSocket hijacking
    (None, False),  # no browser leaves Origin out, so no cookie user does either
])
def test_a_session_cookie_is_accepted_only_from_our_origin(site_server, user, origin, accepted):
    headers = {"Cookie": session_cookie(user)}
    if accepted:
        with connect(ws_url(site_server, "/ws/ping/"), origin=origin, additional_headers=headers) as socket:
            assert json.loads(socket.recv(timeout=10)) == {"type": "hello", "user": user.pk}
        return
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(site_server, "/ws/ping/"), origin=origin, additional_headers=headers, open_timeout=10)
    assert refused.value.response.status_code == 403
