"""A second user sees none of the first user's rows: 404 on every item, nothing in lists,
no enrolling into their subjects or from their faces; staff see everything."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from recognition.models import Face, Job, Subject
from tests.integration.recognition.api_helpers import enrolled_photo, jpeg_bytes, make_face, stored_asset

pytestmark = pytest.mark.django_db


def client_for(api_client, someone):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(someone).access_token}")
    return api_client


@pytest.fixture
def alices(user):
    return enrolled_photo(user, "alice.jpg", "Alice's friend")


@pytest.fixture
def bob(api_client, other_user):
    return client_for(api_client, other_user)


def test_every_item_of_another_user_answers_404(bob, alices):
    asset, job, subject, face = alices["asset"], alices["job"], alices["subject"], alices["face"]
    gets = [
        f"/api/v1/assets/{asset.pk}/", f"/api/v1/assets/{asset.pk}/file/", f"/api/v1/assets/{asset.pk}/thumbnail/",
        f"/api/v1/jobs/{job.pk}/", f"/api/v1/faces/{face.pk}/", f"/api/v1/faces/{face.pk}/crop/",
        f"/api/v1/faces/{face.pk}/similar/", f"/api/v1/subjects/{subject.pk}/",
        f"/api/v1/subjects/{subject.pk}/examples/",
    ]
    for url in gets:
        response = bob.get(url)
        assert response.status_code == 404, url
        assert response.json()["status"] == 404
    assert bob.post(f"/api/v1/jobs/{job.pk}/rerun/").status_code == 404
    assert bob.delete(f"/api/v1/assets/{asset.pk}/").status_code == 404
    assert bob.patch(f"/api/v1/faces/{face.pk}/", {"subject": None}, format="json").status_code == 404
    assert bob.patch(f"/api/v1/subjects/{subject.pk}/", {"name": "Mine"}, format="json").status_code == 404
    assert bob.delete(f"/api/v1/subjects/{subject.pk}/").status_code == 404
    assert bob.delete(f"/api/v1/subjects/{subject.pk}/examples/{face.pk}/").status_code == 404
    assert Job.objects.filter(asset=asset).count() == 1
    assert Subject.objects.get(pk=subject.pk).name == "Alice's friend"
    assert Face.objects.get(pk=face.pk).is_example


def test_lists_never_include_another_users_rows(bob, alices, other_user):
    bobs_asset = stored_asset(other_user, jpeg_bytes(seed=7), "bob.jpg")
    bobs_face = make_face(bobs_asset, embedding=alices["face"].embedding)

    for url, expected in [
        ("/api/v1/assets/", [bobs_asset.pk]),
        ("/api/v1/jobs/", [bobs_asset.jobs.get().pk]),
        ("/api/v1/faces/", [bobs_face.pk]),
        ("/api/v1/subjects/", []),
    ]:
        assert [row["id"] for row in bob.get(url).json()["results"]] == expected, url
    # Filters naming another user's rows find nothing rather than telling they exist.
    assert bob.get("/api/v1/assets/", {"subject": alices["subject"].pk}).json()["count"] == 0
    assert bob.get("/api/v1/faces/", {"asset": alices["asset"].pk}).json()["count"] == 0
    # "Find this face everywhere" searches only Bob's faces, though Alice's is identical.
    assert bob.get(f"/api/v1/faces/{bobs_face.pk}/similar/").json() == []


def test_no_enrolling_into_another_users_subject_or_from_their_face(bob, alices, other_user):
    bobs_subject = Subject.objects.create(owner=other_user, name="Bob's friend")
    bobs_face = make_face(stored_asset(other_user, jpeg_bytes(seed=7)))

    into_theirs = bob.post(f"/api/v1/subjects/{alices['subject'].pk}/examples/", {"face_id": bobs_face.pk},
                           format="json")
    from_theirs = bob.post(f"/api/v1/subjects/{bobs_subject.pk}/examples/", {"face_id": alices["face"].pk},
                           format="json")
    to_their_subject = bob.patch(f"/api/v1/faces/{bobs_face.pk}/", {"subject": alices["subject"].pk},
                                 format="json")

    assert into_theirs.status_code == 404
    assert from_theirs.status_code == 400
    assert from_theirs.json()["message"] == f"face_id: You have no face with id {alices['face'].pk}."
    assert to_their_subject.status_code == 400
    assert Face.objects.get(pk=bobs_face.pk).subject_id is None
    assert not Face.objects.filter(subject=bobs_subject).exists()


def test_staff_see_everyone_and_keep_faces_with_their_owners_subjects(api_client, staff_user, alices, other_user):
    staff = client_for(api_client, staff_user)
    bobs_subject = Subject.objects.create(owner=other_user, name="Bob's friend")
    face = alices["face"]

    assert staff.get("/api/v1/assets/").json()["count"] == 1
    assert staff.get(f"/api/v1/faces/{face.pk}/crop/").status_code == 200
    assert staff.get(f"/api/v1/subjects/{alices['subject'].pk}/examples/").json()["count"] == 1
    # Even staff cannot give Alice's face a subject of Bob's.
    assert staff.patch(f"/api/v1/faces/{face.pk}/", {"subject": bobs_subject.pk}, format="json").status_code == 400
