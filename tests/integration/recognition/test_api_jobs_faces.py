"""Jobs (poll, filter, re-run) and faces (filters, who-is-it corrections, crops, similar)."""

from __future__ import annotations


import pytest

from recognition.models import Face, Job, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset, unit_vector, upload_of

pytestmark = pytest.mark.django_db


def test_jobs_list_retrieve_and_filter_by_stage(auth_client, user):
    done = stored_asset(user, jpeg_bytes(seed=1)).jobs.get()
    failed = stored_asset(user, jpeg_bytes(seed=2)).jobs.get()
    Job.objects.filter(pk=failed.pk).update(stage="failed", error="Broken.", error_code="corrupt")

    listed = auth_client.get("/api/v1/jobs/").json()
    only_failed = auth_client.get("/api/v1/jobs/", {"stage": "failed"}).json()
    one = auth_client.get(f"/api/v1/jobs/{failed.pk}/").json()

    assert listed["count"] == 2
    assert [job["id"] for job in only_failed["results"]] == [failed.pk]
    assert {job["id"] for job in listed["results"]} == {done.pk, failed.pk}
    assert (one["stage"], one["error"], one["error_code"], one["asset"]) == ("failed", "Broken.", "corrupt",
                                                                             failed.asset_id)
    assert {"progress", "timings", "attempts", "model_version", "url"} <= set(one)


def test_rerun_starts_a_new_job_and_is_refused_while_one_is_running(auth_client, user):
    old = stored_asset(user, jpeg_bytes()).jobs.get()

    first = auth_client.post(f"/api/v1/jobs/{old.pk}/rerun/")
    second = auth_client.post(f"/api/v1/jobs/{old.pk}/rerun/")

    assert first.status_code == 202
    new = Job.objects.get(pk=first.json()["id"])
    assert (new.asset_id, new.stage) == (old.asset_id, "queued")
    assert second.status_code == 409
    assert second.json()["code"] == "job_in_progress"
    assert "still being processed" in second.json()["message"]


def test_face_filters(auth_client, user):
    asset = stored_asset(user, jpeg_bytes(seed=1))
    other_asset = stored_asset(user, jpeg_bytes(seed=2))
    ada = Subject.objects.create(owner=user, name="Ada")
    example = make_face(asset, subject=ada, is_example=True)
    matched = make_face(other_asset, subject=ada)
    unknown = make_face(other_asset)

    def ids(**params):
        return {face["id"] for face in auth_client.get("/api/v1/faces/", params).json()["results"]}

    assert ids() == {example.pk, matched.pk, unknown.pk}
    assert ids(asset=other_asset.pk) == {matched.pk, unknown.pk}
    assert ids(subject=ada.pk) == {example.pk, matched.pk}
    assert ids(unknown="true") == {unknown.pk}
    assert ids(is_example="true") == {example.pk}
    detail = auth_client.get(f"/api/v1/faces/{matched.pk}/").json()
    assert detail["subject"] == {"id": ada.pk, "name": "Ada", "is_named": True}
    assert detail["crop_url"].endswith(f"/api/v1/faces/{matched.pk}/crop/")


def test_patch_names_who_a_face_is_or_makes_it_unknown(auth_client, user, other_user):
    asset = stored_asset(user, jpeg_bytes())
    ada = Subject.objects.create(owner=user, name="Ada")
    example = make_face(asset, subject=ada, is_example=True)
    face = make_face(asset, box=(50, 8, 80, 44))
    foreign = Subject.objects.create(owner=other_user, name="Bob's friend")

    named = auth_client.patch(f"/api/v1/faces/{face.pk}/", {"subject": ada.pk}, format="json")
    refused = auth_client.patch(f"/api/v1/faces/{face.pk}/", {"subject": foreign.pk}, format="json")
    cleared = auth_client.patch(f"/api/v1/faces/{example.pk}/", {"subject": None}, format="json")

    assert named.status_code == 200
    assert named.json()["subject"] == {"id": ada.pk, "name": "Ada", "is_named": True}
    assert (named.json()["decided_by"], named.json()["used_for_matching"]) == ("human", True)
    assert refused.status_code == 400
    assert refused.json()["message"] == f"subject: You have no subject with id {foreign.pk}."
    assert Face.objects.get(pk=face.pk).subject_id == ada.pk
    assert cleared.status_code == 200
    assert (cleared.json()["subject"], cleared.json()["is_example"], cleared.json()["decided_by"]) == (
        None, False, "human")
    assert cleared.json()["rejected_subjects"] == [ada.pk]  # "unknown" also says: not Ada


def test_a_face_found_before_crops_were_stored_has_none_and_nothing_is_decoded(auth_client, user):
    face = make_face(stored_asset(user, jpeg_bytes()), with_crop=False)

    response = auth_client.get(f"/api/v1/faces/{face.pk}/crop/")

    assert (response.status_code, response.json()["code"]) == (404, "face_unavailable")
    assert "re-run" in response.json()["message"]


def test_a_stored_crop_is_served_and_cached_by_the_browser_only(auth_client, user):
    face = make_face(stored_asset(user, jpeg_bytes()))

    response = auth_client.get(f"/api/v1/faces/{face.pk}/crop/")

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"
    assert response["Cache-Control"] == "private, max-age=3600"


def test_similar_lists_the_owners_nearest_faces_without_the_face_itself(auth_client, user):
    asset = stored_asset(user, jpeg_bytes())
    base = unit_vector(1)
    face = make_face(asset, embedding=base)
    near = make_face(asset, embedding=base + 0.01)
    nearer = make_face(asset, embedding=base + 0.001)
    far = make_face(asset, embedding=unit_vector(2))

    everything = auth_client.get(f"/api/v1/faces/{face.pk}/similar/").json()
    close_only = auth_client.get(f"/api/v1/faces/{face.pk}/similar/", {"max_distance": 0.5, "limit": 5}).json()
    bad_limit = auth_client.get(f"/api/v1/faces/{face.pk}/similar/", {"limit": 0})

    assert [f["id"] for f in everything] == [nearer.pk, near.pk, far.pk]
    assert everything[0]["distance"] < everything[1]["distance"] < everything[2]["distance"]
    assert [f["id"] for f in close_only] == [nearer.pk, near.pk]
    assert bad_limit.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_photo_is_processed_into_faces_the_api_lists(auth_client, faces_dir, run_jobs):
    upload = auth_client.post("/api/v1/assets/", {"file": upload_of(faces_dir / "probes" / "two_people.jpg")},
                              format="multipart").json()

    run_jobs()

    job = auth_client.get(upload["job_url"]).json()
    faces = auth_client.get("/api/v1/faces/", {"asset": upload["asset"]["id"]}).json()
    assert job["stage"] == "completed", job
    assert set(job["timings"]) >= {"detecting", "enhancing", "recognizing"}
    assert faces["count"] == 2
    assert all(face["subject"] is None for face in faces["results"])
    crop = auth_client.get(faces["results"][0]["crop_url"])
    assert crop.status_code == 200 and b"".join(crop.streaming_content)[:3] == b"\xff\xd8\xff"
