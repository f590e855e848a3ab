"""People through the API: naming teaches recognition, "not this person" and "not a face" are
kept, and people are renamed, merged, hidden, deleted and erased; each only by their owner."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from recognition import search
from recognition.models import ErasedFace, Face, FaceRejection, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset

pytestmark = pytest.mark.django_db

FACES = "/api/v1/faces/"
SUBJECTS = "/api/v1/subjects/"


def person_vector(seed: int, variation: int = 0) -> np.ndarray:
    """A synthetic embedding: one 'person' per seed, faces of them within ~0.2 of each other."""
    center = np.random.default_rng(seed).normal(size=128)
    center = center / np.linalg.norm(center) * 0.5
    noise = np.random.default_rng(1000 * seed + variation + 1).normal(size=128)
    return (center + noise / np.linalg.norm(noise) * 0.1).astype(np.float32)


def photo(user, seed: int):
    return stored_asset(user, jpeg_bytes(seed=seed), f"photo{seed}.jpg")


def identified(user, vector) -> int | None:
    match = search.identify(user.pk, vector.reshape(1, -1))[0][0]
    return match.subject_id if match else None


def test_naming_a_face_teaches_recognition(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    face = make_face(photo(user, 1), embedding=person_vector(1), quality=0.9)
    assert identified(user, person_vector(1, variation=5)) is None  # nobody to recognise yet

    response = auth_client.patch(f"{FACES}{face.pk}/", {"subject": ada.pk}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["decided_by"], body["used_for_matching"], body["matching_note"]) == ("human", True, None)
    assert body["decided_at"] is not None
    assert identified(user, person_vector(1, variation=5)) == ada.pk  # another photo of Ada
    assert auth_client.get(f"{SUBJECTS}{ada.pk}/").json()["example_count"] == 1


def test_a_face_too_unclear_is_named_but_does_not_teach_and_says_so(auth_client, user, settings):
    settings.SIGHTLINE_ENROL_MIN_QUALITY = 0.4
    ada = Subject.objects.create(owner=user, name="Ada")
    face = make_face(photo(user, 1), embedding=person_vector(1), quality=0.32)

    body = auth_client.patch(f"{FACES}{face.pk}/", {"subject": ada.pk}, format="json").json()

    assert (body["subject"]["id"], body["decided_by"], body["used_for_matching"]) == (ada.pk, "human", False)
    assert "quality 0.32 is under 0.40" in body["matching_note"]
    assert identified(user, person_vector(1, variation=5)) is None


def test_not_this_person_falls_to_the_next_candidate_and_is_remembered(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    bea = Subject.objects.create(owner=user, name="Bea")
    make_face(photo(user, 1), embedding=person_vector(1), subject=ada, is_example=True)
    # Bea's example is a little further from the face than Ada's.
    make_face(photo(user, 2), embedding=person_vector(1, variation=9) * 0.98, subject=bea, is_example=True)
    face = make_face(photo(user, 3), embedding=person_vector(1, variation=3), subject=ada, match_distance=0.2)

    body = auth_client.post(f"{FACES}{face.pk}/reject/", {}, format="json").json()

    assert body["subject"]["id"] == bea.pk and body["decided_by"] == "auto"
    assert body["rejected_subjects"] == [ada.pk]
    again = auth_client.post(f"{FACES}{face.pk}/reject/", {}, format="json").json()
    assert again["subject"] is None  # neither Ada nor Bea: unknown (and alone, so no cluster)
    assert sorted(again["rejected_subjects"]) == sorted([ada.pk, bea.pk])


def test_naming_withdraws_an_earlier_not_this_person(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    face = make_face(photo(user, 1), embedding=person_vector(1))
    FaceRejection.objects.create(face=face, subject=ada)

    body = auth_client.patch(f"{FACES}{face.pk}/", {"subject": ada.pk}, format="json").json()

    assert body["rejected_subjects"] == []


def test_not_a_face_hides_the_face_until_restored(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    asset = photo(user, 1)
    face = make_face(asset, embedding=person_vector(1), subject=ada, is_example=True)
    other = make_face(asset, embedding=person_vector(1, 2), box=(60, 8, 90, 44))

    dismissed = auth_client.post(f"{FACES}{face.pk}/dismiss/").json()

    assert (dismissed["dismissed"], dismissed["subject"], dismissed["used_for_matching"]) == (True, None, False)
    assert [f["id"] for f in auth_client.get(FACES).json()["results"]] == [other.pk]
    assert [f["id"] for f in auth_client.get(FACES, {"dismissed": "true"}).json()["results"]] == [face.pk]
    assert face.pk not in [f["id"] for f in auth_client.get(f"{FACES}{other.pk}/similar/").json()]
    assert identified(user, person_vector(1, 3)) is None  # no longer teaches
    assert auth_client.get(f"/api/v1/assets/{asset.pk}/").json()["face_count"] == 1

    restored = auth_client.post(f"{FACES}{face.pk}/restore/").json()
    assert (restored["dismissed"], restored["decided_by"]) == (False, "auto")


def test_new_person_from_a_face(auth_client, user):
    face = make_face(photo(user, 1), embedding=person_vector(1))

    response = auth_client.post(SUBJECTS, {"name": "Cleo", "face": face.pk}, format="json")

    assert response.status_code == 201
    assert (response.json()["name"], response.json()["face_count"], response.json()["cover_face"]) == (
        "Cleo", 1, face.pk)
    face.refresh_from_db()
    assert (face.subject.name, face.decided_by) == ("Cleo", "human")


def test_naming_a_cluster_confirms_its_faces(auth_client, user):
    cluster = Subject.objects.create(owner=user, name="")
    faces = [make_face(photo(user, i), embedding=person_vector(1, i), subject=cluster) for i in range(3)]

    listed = auth_client.get(SUBJECTS, {"named": "false"}).json()["results"]
    assert [(s["id"], s["is_named"], s["display_name"]) for s in listed] == [
        (cluster.pk, False, f"Unnamed person {cluster.pk}")]
    body = auth_client.patch(f"{SUBJECTS}{cluster.pk}/", {"name": "Dora"}, format="json").json()

    assert (body["name"], body["is_named"], body["example_count"]) == ("Dora", True, 3)
    assert set(Face.objects.filter(pk__in=[f.pk for f in faces]).values_list("decided_by", flat=True)) == {"human"}
    assert identified(user, person_vector(1, 7)) == cluster.pk


def test_merge_moves_faces_examples_and_feedback(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    cluster = Subject.objects.create(owner=user, name="")
    other = Subject.objects.create(owner=user, name="Zed")
    kept = make_face(photo(user, 1), subject=ada, is_example=True)
    moved = [make_face(photo(user, i), embedding=person_vector(2, i), subject=cluster) for i in (2, 3)]
    refusing = make_face(photo(user, 4), subject=cluster)
    FaceRejection.objects.create(face=refusing, subject=ada)  # "this face is not Ada"
    zeds_face = make_face(photo(user, 5), subject=other)
    FaceRejection.objects.create(face=zeds_face, subject=cluster)

    response = auth_client.post(f"{SUBJECTS}{ada.pk}/merge/", {"subjects": [cluster.pk]}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["faces_moved"], body["faces_left_unknown"]) == (2, 1)
    assert body["subject"]["face_count"] == 3
    assert not Subject.objects.filter(pk=cluster.pk).exists()
    assert set(Face.objects.filter(subject=ada).values_list("pk", flat=True)) == {kept.pk, *[f.pk for f in moved]}
    refusing.refresh_from_db()
    assert refusing.subject_id is None
    assert FaceRejection.objects.filter(face=zeds_face, subject=ada).exists()  # the feedback moved too


def test_merge_refuses_strangers_people(auth_client, user, other_user):
    ada = Subject.objects.create(owner=user, name="Ada")
    theirs = Subject.objects.create(owner=other_user, name="Theirs")
    response = auth_client.post(f"{SUBJECTS}{ada.pk}/merge/", {"subjects": [theirs.pk]}, format="json")
    assert response.status_code == 404
    assert Subject.objects.filter(pk=theirs.pk).exists()


def test_hide_and_filter_hidden(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    Subject.objects.create(owner=user, name="Bea")
    auth_client.patch(f"{SUBJECTS}{ada.pk}/", {"hidden": True}, format="json")
    assert [s["name"] for s in auth_client.get(SUBJECTS, {"hidden": "false"}).json()["results"]] == ["Bea"]
    assert [s["name"] for s in auth_client.get(SUBJECTS, {"hidden": "true"}).json()["results"]] == ["Ada"]


def test_people_are_listed_named_first_then_unnamed_by_size(auth_client, user):
    small, big = Subject.objects.create(owner=user, name=""), Subject.objects.create(owner=user, name="")
    for i in range(3):
        make_face(photo(user, 10 + i), subject=big)
    make_face(photo(user, 20), subject=small)
    Subject.objects.create(owner=user, name="zoe")
    Subject.objects.create(owner=user, name="Adam")
    listed = [(s["name"], s["face_count"]) for s in auth_client.get(SUBJECTS).json()["results"]]
    assert listed == [("Adam", 0), ("zoe", 0), ("", 3), ("", 1)]


def test_erase_removes_every_face_and_re_runs_cannot_bring_them_back(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    asset = photo(user, 1)
    make_face(asset, subject=ada, is_example=True, box=(10, 10, 50, 50))
    make_face(photo(user, 2), subject=ada)
    stranger = make_face(asset, box=(60, 10, 100, 50))

    preview = auth_client.get(f"{SUBJECTS}{ada.pk}/erasure/").json()
    refused = auth_client.post(f"{SUBJECTS}{ada.pk}/erase/", {"confirm": False}, format="json")
    erased = auth_client.post(f"{SUBJECTS}{ada.pk}/erase/", {"confirm": True}, format="json").json()

    assert (preview["faces"], preview["examples"], preview["photos"]) == (2, 1, 2)
    assert refused.status_code == 400
    assert erased["faces"] == 2
    assert not Subject.objects.filter(pk=ada.pk).exists()
    assert list(Face.objects.filter(owner=user).values_list("pk", flat=True)) == [stranger.pk]
    assert ErasedFace.objects.filter(asset=asset).count() == 1  # a box, nothing biometric


def test_delete_keeps_faces_as_unknown(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    face = make_face(photo(user, 1), subject=ada, is_example=True, decided_by="human")
    assert auth_client.delete(f"{SUBJECTS}{ada.pk}/").status_code == 204
    face.refresh_from_db()
    assert (face.subject_id, face.is_example, face.decided_by) == (None, False, "auto")


def test_name_taken_on_create_and_rename_names_the_existing_person(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    cluster = Subject.objects.create(owner=user, name="")
    response = auth_client.patch(f"{SUBJECTS}{cluster.pk}/", {"name": "ADA"}, format="json")
    assert response.status_code == 409
    assert response.json()["existing"] == {"id": ada.pk, "name": "Ada"}
    assert auth_client.post(SUBJECTS, {"name": "  "}, format="json").status_code == 400


def test_every_people_endpoint_is_the_owners_alone(api_client, user, other_user, staff_user):
    ada = Subject.objects.create(owner=user, name="Ada")
    face = make_face(photo(user, 1), subject=ada)
    calls = [
        ("post", f"{FACES}{face.pk}/reject/", {}),
        ("post", f"{FACES}{face.pk}/dismiss/", None),
        ("post", f"{FACES}{face.pk}/restore/", None),
        ("patch", f"{FACES}{face.pk}/", {"subject": None}),
        ("patch", f"{SUBJECTS}{ada.pk}/", {"hidden": True}),
        ("post", f"{SUBJECTS}{ada.pk}/merge/", {"subjects": [ada.pk]}),
        ("get", f"{SUBJECTS}{ada.pk}/erasure/", None),
        ("post", f"{SUBJECTS}{ada.pk}/erase/", {"confirm": True}),
        ("delete", f"{SUBJECTS}{ada.pk}/", None),
    ]
    for method, url, data in calls:
        api_client.credentials()
        assert getattr(api_client, method)(url, data, format="json").status_code == 401, url
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(other_user).access_token}")
        assert getattr(api_client, method)(url, data, format="json").status_code == 404, url
    assert api_client.post(SUBJECTS, {"name": "Mine", "face": face.pk}, format="json").status_code == 404
    face.refresh_from_db()
    assert (face.subject_id, face.dismissed, Subject.objects.get(pk=ada.pk).hidden) == (ada.pk, False, False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user).access_token}")
    assert api_client.get(f"{SUBJECTS}{ada.pk}/erasure/").status_code == 200


def test_similar_faces_are_found_past_many_nearer_strangers(auth_client, user, other_user):
    """HNSW with an owner filter: without the iterative scan, the 150 nearer faces of another
    user (more than ef_search) would leave the owner's own neighbours out."""
    target = person_vector(1)
    query = make_face(photo(user, 1), embedding=target)
    mine = [make_face(photo(user, 2 + i), embedding=person_vector(1, 50 + i) * 1.2) for i in range(3)]
    strangers_asset = photo(other_user, 99)
    Face.objects.bulk_create(
        Face(asset=strangers_asset, owner=other_user, box=[0, 0, 1, 1], landmarks=[[0, 0]] * 5, score=1, quality=1,
             model_version="test", embedding=(target + np.random.default_rng(i).normal(size=128) * 0.001).astype(
                 np.float32))
        for i in range(150)
    )

    found = auth_client.get(f"{FACES}{query.pk}/similar/", {"limit": 3}).json()

    assert sorted(f["id"] for f in found) == sorted(f.pk for f in mine)


def test_naming_a_face_at_once_names_its_stored_look_alikes_and_no_one_else(auth_client, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    named = make_face(photo(user, 1), embedding=person_vector(1))
    alike = [make_face(photo(user, 2 + i), embedding=person_vector(1, 10 + i)) for i in range(2)]
    cluster = Subject.objects.create(owner=user, name="")
    in_cluster = make_face(photo(user, 5), embedding=person_vector(1, 20), subject=cluster)
    stranger = make_face(photo(user, 6), embedding=person_vector(2))
    group_photo = photo(user, 7)  # Ada already named here: her look-alike in it stays someone else
    make_face(group_photo, embedding=person_vector(3), subject=ada, decided_by="human", box=(0, 0, 9, 9))
    twin = make_face(group_photo, embedding=person_vector(1, 30), box=(50, 0, 59, 9))

    auth_client.patch(f"{FACES}{named.pk}/", {"subject": ada.pk}, format="json")

    def person(face):
        return Face.objects.get(pk=face.pk).subject_id

    assert [person(f) for f in alike] == [ada.pk, ada.pk]
    assert person(in_cluster) == ada.pk and not Subject.objects.filter(pk=cluster.pk).exists()
    assert (person(stranger), person(twin)) == (None, None)
    assert Face.objects.get(pk=alike[0].pk).decided_by == "auto"  # matched, not decided by a person


def test_a_look_alike_track_is_not_given_a_person_already_seen_at_the_same_time(auth_client, user):
    """Naming a face re-matches look-alike video tracks, but never onto a person who has another
    track on screen at the same moments (a new user's trial saw the pianist beside Lin-Manuel
    become a second Lin-Manuel in the same frames); a track of another moment still joins."""
    from media.models import Asset
    from recognition.models import Appearance

    ada = Subject.objects.create(owner=user, name="Ada")
    video = photo(user, 40)
    Asset.objects.filter(pk=video.pk).update(kind="video")

    def track(start: float, seed: int, variation: int, **fields) -> list[Face]:
        faces = [make_face(video, embedding=person_vector(seed, variation + n), frame_index=n, timestamp=start + n * 0.5,
                           box=(10 + 50 * (seed % 3), 8, 40 + 50 * (seed % 3), 44), **fields) for n in range(3)]
        appearance = Appearance.objects.create(asset=video, owner=user, start_seconds=start, end_seconds=start + 1.0,
                                               best_face=faces[0], embedding=faces[0].embedding, face_count=3)
        Face.objects.filter(pk__in=[f.pk for f in faces]).update(appearance=appearance)
        return faces

    track(0.0, seed=3, variation=0, subject=ada, decided_by="human")  # Ada herself, said by a person
    beside_her = track(0.0, seed=1, variation=40)  # someone like Ada's new example, beside her
    later = track(5.0, seed=1, variation=60)  # the same look-alike, alone on screen later
    twins = [track(10.0, seed=1, variation=80), track(10.0, seed=4, variation=0)]  # two at once...
    Face.objects.filter(pk__in=[f.pk for f in twins[1]]).update(embedding=person_vector(1, 90))  # ...both alike
    named = make_face(photo(user, 41), embedding=person_vector(1), quality=0.9)

    auth_client.patch(f"{FACES}{named.pk}/", {"subject": ada.pk}, format="json")

    def people(faces):
        return {Face.objects.get(pk=f.pk).subject_id for f in faces}

    assert people(beside_her) == {None}
    assert people(later) == {ada.pk}
    assert sorted(len(people(t) - {None}) for t in twins) == [0, 1]  # one of the two, not both
