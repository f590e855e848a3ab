"""Uploading a video through the API while its probe child misbehaves: the web process answers
a clean JSON refusal, stores nothing, and serves the next upload. Real child processes; the
misbehaviour comes from a ``sitecustomize.py`` that every Python child runs first."""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media.models import Asset
from tests.unit.media import samples

pytestmark = pytest.mark.django_db

ASSETS = "/api/v1/assets/"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def post_video(client, data: bytes):
    return client.post(ASSETS, {"file": SimpleUploadedFile("clip.mp4", data)}, format="multipart")


def test_a_crashing_probe_is_a_400_and_the_next_upload_is_served(auth_client, tmp_path, monkeypatch):
    startup = tmp_path / "child-startup"
    startup.mkdir()
    (startup / "sitecustomize.py").write_text(
        "import os, resource, signal\n"
        "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
        "os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(startup), os.environ.get("PYTHONPATH")])))
    data = samples.synthetic_video(frames=10, fps=5)

    crashed = post_video(auth_client, data)

    assert crashed.status_code == 400
    assert crashed.json()["code"] == "corrupt"
    assert crashed.json()["message"] == "The video could not be read: the decoder crashed."
    assert not Asset.objects.exists()

    monkeypatch.delenv("PYTHONPATH")
    accepted = post_video(auth_client, data)

    assert accepted.status_code == 202, accepted.json()
    asset = accepted.json()["asset"]
    assert (asset["kind"], asset["width"], asset["height"]) == ("video", 64, 48)


def test_a_video_spooled_to_disk_is_probed_from_its_temporary_file(auth_client, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload becomes a TemporaryUploadedFile
    response = post_video(auth_client, samples.synthetic_video(frames=10, fps=5))

    assert response.status_code == 202, response.json()
    asset = Asset.objects.get(pk=response.json()["asset"]["id"])
    assert (asset.kind, asset.width, asset.height, asset.frame_count) == ("video", 64, 48, 10)
    assert asset.thumbnail


def test_a_video_with_frames_over_the_limit_is_a_400_and_nothing_is_stored(auth_client, settings):
    settings.SIGHTLINE_MAX_VIDEO_PIXELS = 32 * 24
    response = post_video(auth_client, samples.synthetic_video(frames=10, fps=5))  # 64×48 frames

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_pixels"
    assert not Asset.objects.exists()
