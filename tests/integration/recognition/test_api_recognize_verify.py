"""1:N recognize and 1:1 verify, with a real realtime worker running the engine."""

from __future__ import annotations

import pytest

from recognition.models import Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset, unit_vector, upload_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gallery(faces_dir):
    return faces_dir / "gallery"


@pytest.fixture
def probes(faces_dir):
    return faces_dir / "probes"


def enrol(client, user, name: str, photo) -> Subject:
    subject = Subject.objects.create(owner=user, name=name)
    response = client.post(f"/api/v1/subjects/{subject.pk}/examples/", {"file": upload_of(photo), "face_index": 0},
                           format="multipart")
    assert response.status_code == 201, response.json()
    return subject


def test_recognize_finds_an_enrolled_person_and_stores_nothing(auth_client, user, gallery, probes, realtime_worker):
    from media.models import Asset

    obama = enrol(auth_client, user, "Obama", gallery / "obama" / "obama.jpg")
    enrol(auth_client, user, "Biden", gallery / "biden" / "biden.jpg")
    assets_before = Asset.objects.count()

    response = auth_client.post("/api/v1/recognize/", {"file": upload_of(probes / "obama1.jpg"), "limit": 2},
                                format="multipart")

    body = response.json()
    assert response.status_code == 200, body
    assert body["threshold"] == 0.6
    assert body["model_version"]
    face = body["faces"][0]
    assert face["subject"]["id"] == obama.pk
    assert face["subject"]["name"] == "Obama"
    assert face["subject"]["distance"] < 0.6
    assert face["candidates"][0]["subject"] == {"id": obama.pk, "name": "Obama"}
    assert len(face["candidates"]) <= 2
    assert {"box", "landmarks", "score", "quality"} <= set(face)
    assert Asset.objects.count() == assets_before


def test_recognize_with_a_strict_threshold_says_unknown(auth_client, user, gallery, probes, realtime_worker):
    enrol(auth_client, user, "Obama", gallery / "obama" / "obama.jpg")

    response = auth_client.post("/api/v1/recognize/", {"file": upload_of(probes / "obama1.jpg"), "threshold": 0.05},
                                format="multipart")

    assert response.status_code == 200
    face = response.json()["faces"][0]
    assert face["subject"] is None
    assert face["candidates"][0]["subject"]["name"] == "Obama"  # still shown, just too far


def test_verify_two_photos(auth_client, gallery, realtime_worker):
    obama, obama2 = gallery / "obama" / "obama.jpg", gallery / "obama" / "obama2.jpg"
    biden = gallery / "biden" / "biden.jpg"

    same = auth_client.post("/api/v1/verify/", {"file1": upload_of(obama), "file2": upload_of(obama2)},
                            format="multipart")
    different = auth_client.post("/api/v1/verify/", {"file1": upload_of(obama), "file2": upload_of(biden)},
                                 format="multipart")

    assert same.status_code == 200, same.json()
    assert same.json()["same_person"] is True
    assert same.json()["distance"] < same.json()["threshold"] == 0.6
    assert len(same.json()["faces"]) == 2
    assert different.status_code == 200
    assert different.json()["same_person"] is False
    assert different.json()["distance"] > 0.6


def test_verify_says_which_photo_has_no_face(auth_client, gallery, realtime_worker):
    response = auth_client.post(
        "/api/v1/verify/",
        {"file1": upload_of(gallery / "obama" / "obama.jpg"), "file2": upload_of(jpeg_bytes(size=(320, 240)))},
        format="multipart",
    )

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["message"]) == ("no_face", "No face was found in file2.")


def test_verify_two_stored_faces_needs_no_worker(auth_client, user, other_user):
    asset = stored_asset(user, jpeg_bytes())
    base = unit_vector(3)
    face = make_face(asset, embedding=base)
    twin = make_face(asset, embedding=base + 0.01)
    stranger = make_face(asset, embedding=unit_vector(4))
    foreign = make_face(stored_asset(other_user, jpeg_bytes()), embedding=base)

    same = auth_client.post("/api/v1/verify/", {"face1": face.pk, "face2": twin.pk}, format="json").json()
    different = auth_client.post("/api/v1/verify/", {"face1": face.pk, "face2": stranger.pk}, format="json").json()
    not_yours = auth_client.post("/api/v1/verify/", {"face1": face.pk, "face2": foreign.pk}, format="json")
    mixed = auth_client.post("/api/v1/verify/", {"face1": face.pk, "file2": upload_of(jpeg_bytes())},
                             format="multipart")

    assert same["same_person"] is True and same["distance"] == pytest.approx(0.1131, abs=1e-3)
    assert [f["face"] for f in same["faces"]] == [face.pk, twin.pk]
    assert different["same_person"] is False
    assert not_yours.status_code == 404
    assert not_yours.json()["message"] == f"face2: You have no face with id {foreign.pk}."
    assert mixed.status_code == 400


def test_verify_wants_exactly_one_complete_pair(auth_client, user):
    face = make_face(stored_asset(user, jpeg_bytes()))
    photo = jpeg_bytes(seed=1)
    # Found by the schema fuzzer: two photos and half a pair of ids was a 500.
    for body in ({"file1": upload_of(photo), "file2": upload_of(photo), "face1": face.pk},
                 {"file1": upload_of(photo), "file2": upload_of(photo), "face1": face.pk, "face2": face.pk},
                 {"face1": face.pk}, {"file1": upload_of(photo)}, {}):
        response = auth_client.post("/api/v1/verify/", body, format="multipart")
        assert response.status_code == 400, body
        assert response.json()["message"].startswith("Send either two photos (file1, file2) or two face ids")


def test_recognize_refuses_big_and_non_photo_files_before_any_worker(auth_client, settings):
    settings.SIGHTLINE_REALTIME_MAX_BYTES = 1000

    too_big = auth_client.post("/api/v1/recognize/", {"file": upload_of(jpeg_bytes(size=(320, 240)))},
                               format="multipart")
    settings.SIGHTLINE_REALTIME_MAX_BYTES = 10_000_000
    not_a_photo = auth_client.post("/api/v1/recognize/", {"file": upload_of(b"<html></html>", "x.jpg")},
                                   format="multipart")

    assert (too_big.status_code, too_big.json()["code"]) == (413, "too_large")
    assert (not_a_photo.status_code, not_a_photo.json()["code"]) == (415, "unsupported_type")
