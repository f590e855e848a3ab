"""Appearances through the API: per video and per person, decisions for whole tracks, and
each only for its owner."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from recognition.models import Appearance, Face, Subject
from tests.integration.recognition.api_helpers import make_face, stored_asset
from tests.integration.recognition.test_api_people import person_vector
from tests.unit.media import samples

pytestmark = pytest.mark.django_db


def track(asset, person: int, start: float, frames: int = 3, subject=None) -> Appearance:
    """A stored track: ``frames`` faces half a second apart, the middle one the best."""
    faces = [make_face(asset, embedding=person_vector(person, i), frame_index=i, timestamp=start + i / 2,
                       quality=0.9 if i == frames // 2 else 0.6, subject=subject) for i in range(frames)]
    appearance = Appearance.objects.create(
        asset=asset, owner_id=asset.owner_id, start_seconds=start, end_seconds=start + (frames - 1) / 2,
        best_face=faces[frames // 2], embedding=np.mean([f.embedding for f in faces], axis=0), face_count=frames)
    Face.objects.filter(pk__in=[f.pk for f in faces]).update(appearance=appearance)
    return appearance


@pytest.fixture
def video(user):
    return stored_asset(user, samples.synthetic_video(frames=10, fps=5), "clip.mp4")


def test_a_videos_appearances_in_time_order_with_their_people(auth_client, user, video):
    ada = Subject.objects.create(owner=user, name="Ada")
    later = track(video, 1, start=3.0, subject=ada)
    first = track(video, 2, start=0.5)

    body = auth_client.get(f"/api/v1/assets/{video.pk}/appearances/").json()

    assert [a["id"] for a in body["results"]] == [first.pk, later.pk]
    assert body["results"][1]["subject"] == {"id": ada.pk, "name": "Ada", "is_named": True}
    assert body["results"][0]["subject"] is None
    assert (body["results"][1]["start_seconds"], body["results"][1]["end_seconds"]) == (3.0, 4.0)
    assert [a["id"] for a in auth_client.get("/api/v1/appearances/", {"subject": ada.pk}).json()["results"]] == [
        later.pk]


def test_naming_rejecting_and_dismissing_an_appearance_covers_its_whole_track(auth_client, user, video):
    ada = Subject.objects.create(owner=user, name="Ada")
    appearance = track(video, 1, start=0.0)
    url = f"/api/v1/appearances/{appearance.pk}/"

    named = auth_client.patch(url, {"subject": ada.pk}, format="json").json()
    faces = Face.objects.filter(appearance=appearance)
    assert named["subject"]["id"] == ada.pk and named["decided_by"] == "human"
    assert set(faces.values_list("subject_id", flat=True)) == {ada.pk}
    assert faces.filter(is_example=True).count() == 1  # one face teaches for the track

    auth_client.post(f"{url}reject/", {}, format="json")
    assert set(faces.values_list("subject_id", flat=True)) == {None}
    assert all(ada.pk in f.rejections.values_list("subject_id", flat=True) for f in faces)

    auth_client.post(f"{url}dismiss/")
    assert set(faces.values_list("dismissed", flat=True)) == {True}
    assert auth_client.get(f"/api/v1/assets/{video.pk}/appearances/").json()["count"] == 0


def test_appearances_are_the_owners_alone(api_client, user, other_user, video):
    appearance = track(video, 1, start=0.0)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(other_user).access_token}")
    for method, url in [("get", f"/api/v1/appearances/{appearance.pk}/"),
                        ("get", f"/api/v1/appearances/{appearance.pk}/frame/"),
                        ("get", f"/api/v1/assets/{video.pk}/appearances/"),
                        ("patch", f"/api/v1/appearances/{appearance.pk}/"),
                        ("post", f"/api/v1/appearances/{appearance.pk}/reject/"),
                        ("post", f"/api/v1/appearances/{appearance.pk}/dismiss/")]:
        data = {"subject": None} if method != "get" else None
        assert getattr(api_client, method)(url, data, format="json").status_code == 404, url
    assert api_client.get("/api/v1/appearances/").json()["count"] == 0
    api_client.credentials()
    assert api_client.get("/api/v1/appearances/").status_code == 401
    assert not Face.objects.filter(appearance=appearance, dismissed=True).exists()
