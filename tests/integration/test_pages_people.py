"""The people pages (in-process client): the gallery, a person's page and its controls, and the
face controls of a photo's page; each page and action for its owner alone."""

from __future__ import annotations

import pytest
from django.urls import reverse

from recognition.models import ErasedFace, Face, FaceRejection, Subject
from tests.integration.test_pages_recognition import logged_in, make_asset, make_face

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_gallery_shows_named_people_first_then_the_biggest_unnamed(user):
    asset = make_asset(user)
    small, big = Subject.objects.create(owner=user, name=""), Subject.objects.create(owner=user, name="")
    for x in range(3):
        make_face(asset, subject=big, box=(x * 10, 0, x * 10 + 9, 9))
    make_face(asset, subject=small, box=(50, 0, 59, 9))
    Subject.objects.create(owner=user, name="Zoe")
    Subject.objects.create(owner=user, name="Hidden Hal", hidden=True)
    Subject.objects.create(owner=user, name="")  # no faces left: not a tile

    response = logged_in(user).get(reverse("people"))

    assert [(p.name, p.face_count) for p in response.context["people"]] == [("Zoe", 0), ("", 3), ("", 1)]
    assert "Hidden people (1)" in response.content.decode()
    hidden = logged_in(user).get(reverse("people") + "?hidden=1")
    assert [p.name for p in hidden.context["people"]] == ["Hidden Hal"]


def test_a_video_track_counts_once_on_a_tile_as_on_the_person_page(user):
    from recognition.models import Appearance

    photo, clip = make_asset(user, name="photo.jpg"), make_asset(user, seed=1, name="clip.mp4")
    in_video, in_photos = Subject.objects.create(owner=user, name=""), Subject.objects.create(owner=user, name="")
    make_face(photo, subject=in_video, box=(0, 0, 9, 9))
    frames = [make_face(clip, subject=in_video, frame_index=i, timestamp=i / 2) for i in range(5)]
    track = Appearance.objects.create(asset=clip, owner=user, start_seconds=0.0, end_seconds=2.0,
                                      best_face=frames[2], embedding=[0.0] * 128, face_count=5)
    Face.objects.filter(pk__in=[f.pk for f in frames]).update(appearance=track)
    for x in range(3):
        make_face(photo, subject=in_photos, box=(20 + x * 10, 0, 29 + x * 10, 9))

    tiles = logged_in(user).get(reverse("people"))
    page = logged_in(user).get(reverse("person", args=[in_video.pk]))

    # The photo face and the track: 2, as the person's page lists them (6 counting every frame).
    assert [(p.pk, p.listed_count, p.face_count) for p in tiles.context["people"]] == [
        (in_photos.pk, 3, 3), (in_video.pk, 2, 6)]
    assert page.context["faces"].paginator.count == 2
    assert "2 faces" in tiles.content.decode() and "6 faces" not in tiles.content.decode()


def test_new_person_from_the_face_control(user):
    face = make_face(make_asset(user, name="party.jpg"))
    response = logged_in(user).post(reverse("face-assign", args=[face.pk]),
                                    {"subject": "new", "new_name": "Nora"}, follow=True)
    face.refresh_from_db()
    assert (face.subject.name, face.decided_by, face.is_example) == ("Nora", "human", True)
    assert messages_of(response) == [
        "party.jpg: this face is now Nora. Sightline will use it to recognise them."]


def test_naming_one_face_of_a_group_says_the_others_it_taught(user):
    """A face of a person without a name is named: the faces grouped with it (and any look-alike)
    are recognised as the new person at once, and the message says so, or they seem to move
    by themselves."""
    group = Subject.objects.create(owner=user, name="")
    faces = [make_face(make_asset(user, seed=seed, name=name), subject=group)
             for seed, name in enumerate(("obama_and_biden.jpg", "rally.jpg", "senate.jpg"))]

    response = logged_in(user).post(reverse("face-assign", args=[faces[0].pk]),
                                    {"subject": "new", "new_name": "Joe Biden"}, follow=True)

    joe = Subject.objects.get(owner=user, name="Joe Biden")
    assert set(joe.faces.values_list("pk", flat=True)) == {f.pk for f in faces}
    assert not Subject.objects.filter(pk=group.pk).exists()  # emptied, so gone
    assert messages_of(response) == [
        "obama_and_biden.jpg: this face is now Joe Biden. Sightline will use it to recognise them. "
        "2 more faces that look like them are now Joe Biden too."]


def test_naming_a_face_as_someone_known_counts_only_the_faces_it_added(user):
    joe = Subject.objects.create(owner=user, name="Joe")
    make_face(make_asset(user, seed=10, name="known.jpg"), subject=joe, decided_by="human")
    group = Subject.objects.create(owner=user, name="")
    grouped = [make_face(make_asset(user, seed=seed, name=f"g{seed}.jpg"), subject=group) for seed in (11, 12)]
    named = make_face(make_asset(user, seed=13, name="new.jpg"))

    response = logged_in(user).post(reverse("face-assign", args=[named.pk]), {"subject": joe.pk}, follow=True)

    assert joe.faces.count() == 4 and all(Face.objects.get(pk=f.pk).subject_id == joe.pk for f in grouped)
    assert messages_of(response)[0].endswith("2 more faces that look like them are now Joe too.")


def test_naming_an_unclear_face_says_it_does_not_teach(user):
    nora = Subject.objects.create(owner=user, name="Nora")
    face = make_face(make_asset(user, name="dark.jpg"), quality=0.2)
    response = logged_in(user).post(reverse("face-assign", args=[face.pk]), {"subject": nora.pk}, follow=True)
    assert "too unclear (quality 0.20) to teach recognition" in messages_of(response)[0]


def test_new_person_needs_a_name(user):
    face = make_face(make_asset(user))
    response = logged_in(user).post(reverse("face-assign", args=[face.pk]), {"subject": "new"}, follow=True)
    assert messages_of(response) == ["Type the new person's name."]
    assert not Subject.objects.exists()


def test_not_this_person_and_not_a_face_and_restore(user):
    nora = Subject.objects.create(owner=user, name="Nora")
    face = make_face(make_asset(user, name="party.jpg"), subject=nora, match_distance=0.3)
    client = logged_in(user)

    rejected = client.post(reverse("face-reject", args=[face.pk]), follow=True)
    assert FaceRejection.objects.filter(face=face, subject=nora).exists()
    assert "party.jpg: not Nora, noted; it is unknown now." in messages_of(rejected)[0]

    client.post(reverse("face-dismiss", args=[face.pk]))
    page = client.get(reverse("asset", args=[face.asset_id])).content.decode()
    assert "Dismissed as not a face (1)" in page and f'id="face-{face.pk}"' not in page

    client.post(reverse("face-restore", args=[face.pk]))
    face.refresh_from_db()
    assert not face.dismissed


def test_the_person_page_names_a_cluster_and_merges_it(user):
    asset = make_asset(user)
    cluster = Subject.objects.create(owner=user, name="")
    make_face(asset, subject=cluster)
    nora = Subject.objects.create(owner=user, name="Nora")
    client = logged_in(user)

    page = client.get(reverse("person", args=[cluster.pk])).content.decode()
    assert "Unnamed person" in page and "Name this person" in page and "Same person as" in page

    taken = client.post(reverse("person-rename", args=[cluster.pk]), {"name": "nora"}, follow=True)
    assert "You already have a person called Nora." in messages_of(taken)[0]
    merged = client.post(reverse("person-merge", args=[cluster.pk]), {"into": nora.pk}, follow=True)
    assert merged.redirect_chain[-1][0] == reverse("person", args=[nora.pk])
    assert messages_of(merged) == [f"Merged Unnamed person {cluster.pk} into Nora: 1 face(s) moved."]
    assert Face.objects.get(asset=asset).subject_id == nora.pk


def test_rename_hide_delete_and_erase_from_the_person_page(user):
    asset = make_asset(user, name="beach.jpg")
    nora = Subject.objects.create(owner=user, name="Nora")
    make_face(asset, subject=nora, is_example=True)
    client = logged_in(user)

    client.post(reverse("person-rename", args=[nora.pk]), {"name": "Nora B."})
    client.post(reverse("person-hide", args=[nora.pk]), {"hidden": "1"})
    nora.refresh_from_db()
    assert (nora.name, nora.hidden) == ("Nora B.", True)

    confirm = client.get(reverse("person-erase", args=[nora.pk])).content.decode()
    assert "1 face (with their embeddings) in 1 photo or video, 1 of them used for matching" in confirm
    erased = client.post(reverse("person-erase", args=[nora.pk]), follow=True)
    assert messages_of(erased)[0].startswith("Nora B. erased: 1 face")
    assert not Face.objects.exists() and ErasedFace.objects.count() == 1

    ivy = Subject.objects.create(owner=user, name="Ivy")
    face = make_face(asset, subject=ivy)
    assert "stay in your photos, as unknown faces" in client.get(reverse("person-delete", args=[ivy.pk])).content.decode()
    client.post(reverse("person-delete", args=[ivy.pk]))
    face.refresh_from_db()
    assert face.subject_id is None and not Subject.objects.filter(pk=ivy.pk).exists()


def test_every_people_page_and_action_is_the_owners_alone(user, other_user):
    nora = Subject.objects.create(owner=user, name="Nora")
    face = make_face(make_asset(user), subject=nora)
    stranger = logged_in(other_user)
    gets = ["person", "person-delete", "person-erase"]
    posts = ["person-rename", "person-hide", "person-merge", "person-delete", "person-erase", "person-photos"]
    for name in gets:
        assert stranger.get(reverse(name, args=[nora.pk])).status_code == 404, name
    for name in posts:
        assert stranger.post(reverse(name, args=[nora.pk]), {"name": "Mine", "into": nora.pk}).status_code == 404, name
    for name in ["face-assign", "face-reject", "face-dismiss", "face-restore"]:
        assert stranger.post(reverse(name, args=[face.pk]), {"subject": "new", "new_name": "X"}).status_code == 404
    face.refresh_from_db()
    nora.refresh_from_db()
    assert (face.subject_id, face.dismissed, nora.name, nora.hidden) == (nora.pk, False, "Nora", False)
    assert "Nora" not in stranger.get(reverse("people")).content.decode()


def test_a_next_address_elsewhere_is_ignored(user):
    face = make_face(make_asset(user))
    response = logged_in(user).post(reverse("face-dismiss", args=[face.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == f"{reverse('asset', args=[face.asset_id])}#face-{face.pk}"
