"""Subjects CRUD and their example faces: enrolled from a photo (a real realtime worker finds
the faces) or from a detected face; refused with the reason when the photo has no single face."""

from __future__ import annotations

import pytest

from media.models import Asset
from recognition.models import Face, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset, upload_of

SUBJECTS = "/api/v1/subjects/"


@pytest.mark.django_db
def test_subject_crud_with_names_unique_per_user_ignoring_case(auth_client, user, other_user):
    Subject.objects.create(owner=other_user, name="Ada Lovelace")  # another user's: no clash

    created = auth_client.post(SUBJECTS, {"name": " Ada Lovelace ", "notes": "mathematician"}, format="json")
    duplicate = auth_client.post(SUBJECTS, {"name": "ada lovelace"}, format="json")
    second = auth_client.post(SUBJECTS, {"name": "Grace"}, format="json").json()
    rename_clash = auth_client.patch(f"{SUBJECTS}{second['id']}/", {"name": "ADA LOVELACE"}, format="json")
    renamed = auth_client.patch(f"{SUBJECTS}{second['id']}/", {"name": "Grace Hopper"}, format="json")
    listed = auth_client.get(SUBJECTS).json()

    assert created.status_code == 201
    assert (created.json()["name"], created.json()["face_count"]) == ("Ada Lovelace", 0)
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "name_taken")
    assert duplicate.json()["existing"] == {"id": created.json()["id"], "name": "Ada Lovelace"}
    assert duplicate.json()["message"].startswith("You already have a person called Ada Lovelace.")
    assert (rename_clash.status_code, rename_clash.json()["code"]) == (409, "name_taken")
    assert renamed.json()["name"] == "Grace Hopper"
    assert [s["name"] for s in listed["results"]] == ["Ada Lovelace", "Grace Hopper"]


@pytest.mark.django_db
def test_deleting_a_subject_keeps_its_faces_as_unknown(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    asset = stored_asset(user, jpeg_bytes())
    example = make_face(asset, subject=ada, is_example=True)

    response = auth_client.delete(f"{SUBJECTS}{ada.pk}/")

    assert response.status_code == 204
    example.refresh_from_db()
    assert (example.subject_id, example.is_example) == (None, False)


@pytest.mark.django_db
def test_enrol_from_a_face_id_then_list_and_unenrol(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    face = make_face(stored_asset(user, jpeg_bytes()))

    enrolled = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/", {"face_id": face.pk}, format="json")
    examples = auth_client.get(f"{SUBJECTS}{ada.pk}/examples/").json()
    detail = auth_client.get(f"{SUBJECTS}{ada.pk}/").json()
    removed = auth_client.delete(f"{SUBJECTS}{ada.pk}/examples/{face.pk}/")
    removed_again = auth_client.delete(f"{SUBJECTS}{ada.pk}/examples/{face.pk}/")

    assert enrolled.status_code == 201
    assert (enrolled.json()["is_example"], enrolled.json()["subject"]["id"]) == (True, ada.pk)
    assert [f["id"] for f in examples["results"]] == [face.pk]
    assert detail["example_count"] == 1
    assert removed.status_code == 204
    face.refresh_from_db()
    assert (face.is_example, face.subject_id) == (False, ada.pk)  # un-enrolled, still Ada
    assert removed_again.status_code == 404


@pytest.mark.django_db
def test_enrolment_asks_for_a_photo_or_a_face_not_both(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")

    neither = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/", {}, format="multipart")
    unknown_face = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/", {"face_id": 999999}, format="json")

    assert neither.status_code == 400
    assert neither.json()["message"] == "Send a photo (file) or one of your faces' ids (face_id)."
    assert unknown_face.status_code == 400
    assert unknown_face.json()["message"] == "face_id: You have no face with id 999999."


@pytest.mark.django_db(transaction=True)
def test_enrol_from_a_photo_stores_it_and_starts_its_processing(auth_client, user, faces_dir, realtime_worker,
                                                                 run_jobs):
    obama = Subject.objects.create(owner=user, name="Obama")

    # The detector also finds a small, blurred "face" in the background (quality about 0.3): it
    # does not count, so no face_index is needed.
    response = auth_client.post(f"{SUBJECTS}{obama.pk}/examples/",
                                {"file": upload_of(faces_dir / "gallery" / "obama" / "obama.jpg")},
                                format="multipart")

    assert response.status_code == 201, response.json()
    face = Face.objects.get(pk=response.json()["id"])
    assert (face.subject_id, face.is_example, face.owner_id) == (obama.pk, True, user.pk)
    assert face.quality > 0.9 and face.box[2] - face.box[0] > 200  # the portrait, not the background
    asset = auth_client.get(f"/api/v1/assets/{face.asset_id}/").json()
    assert asset["original_name"] == "obama.jpg"
    assert asset["latest_job"]["stage"] == "queued"  # like any upload
    assert auth_client.get(f"{SUBJECTS}{obama.pk}/examples/").json()["count"] == 1

    run_jobs()

    # Processing keeps the enrolled face (refreshed, not doubled) and adds the background one.
    faces = auth_client.get("/api/v1/faces/", {"asset": face.asset_id}).json()["results"]
    assert auth_client.get(f"/api/v1/assets/{face.asset_id}/").json()["latest_job"]["stage"] == "completed"
    assert len(faces) == 2
    assert [(f["id"], f["is_example"]) for f in faces if f["subject"]] == [(face.pk, True)]


@pytest.mark.django_db(transaction=True)
def test_enrolling_an_already_processed_photo_reuses_its_detected_face(auth_client, user, faces_dir,
                                                                       realtime_worker, run_jobs):
    photo = faces_dir / "gallery" / "biden" / "biden.jpg"
    uploaded = auth_client.post("/api/v1/assets/", {"file": upload_of(photo)}, format="multipart").json()
    run_jobs()
    detected = Face.objects.filter(asset_id=uploaded["asset"]["id"]).order_by("-quality").first()
    biden = Subject.objects.create(owner=user, name="Biden")

    response = auth_client.post(f"{SUBJECTS}{biden.pk}/examples/", {"file": upload_of(photo), "face_index": 0},
                                format="multipart")

    assert response.status_code == 201, response.json()
    assert response.json()["id"] == detected.pk
    assert Face.objects.filter(asset_id=uploaded["asset"]["id"]).count() == Face.objects.count()
    assert Asset.objects.count() == 1
    assert auth_client.get("/api/v1/jobs/").json()["count"] == 1  # no second processing job


@pytest.mark.django_db(transaction=True)
def test_a_photo_without_a_face_is_refused_and_not_kept(auth_client, user, realtime_worker):
    ada = Subject.objects.create(owner=user, name="Ada")

    response = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/",
                                {"file": upload_of(jpeg_bytes(size=(320, 240)), "wall.jpg")}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "no_face"
    assert response.json()["message"] == "No face was found in this photo; an example needs exactly one face."
    assert not Asset.objects.exists()
    assert not Face.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_group_photo_needs_a_face_index_and_the_error_lists_the_faces(auth_client, user, faces_dir,
                                                                        realtime_worker):
    ada = Subject.objects.create(owner=user, name="Ada")
    group = (faces_dir / "probes" / "multiface.jpg").read_bytes()

    refused = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/", {"file": upload_of(group, "group.jpg")},
                               format="multipart")
    out_of_range = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/",
                                    {"file": upload_of(group, "group.jpg"), "face_index": 6}, format="multipart")
    chosen = auth_client.post(f"{SUBJECTS}{ada.pk}/examples/",
                              {"file": upload_of(group, "group.jpg"), "face_index": 2}, format="multipart")

    body = refused.json()
    assert refused.status_code == 400
    assert body["code"] == "several_faces"
    assert body["message"].startswith("6 faces were found in this photo; say which one to enrol with face_index")
    assert [face["index"] for face in body["faces"]] == list(range(6))
    assert all(len(face["box"]) == 4 for face in body["faces"])
    assert out_of_range.status_code == 400 and out_of_range.json()["code"] == "face_index_out_of_range"
    assert chosen.status_code == 201, chosen.json()
    assert chosen.json()["box"] == body["faces"][2]["box"]
    assert Asset.objects.count() == 1  # only the enrolment that succeeded kept the photo
