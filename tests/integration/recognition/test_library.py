"""The library page (filters by person, tag, date, kind, unknown faces; paged), the
near-duplicates page, and "find this face everywhere": owner-scoped, in-process client."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np
import pytest
from django.test import Client

from media.models import Asset
from recognition.models import ImageEmbedding, ImageTag, Subject
from recognition.views.library import ASSETS_PER_PAGE
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset, unit_vector

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def logged_in(someone) -> Client:
    client = Client()
    client.force_login(someone)
    return client


def listed(html: str) -> list[str]:
    return re.findall(r'<span class="library-name">([^<]+)</span>', html)


def uploaded(owner, name: str, seed: int, day: int, kind: str = "image", tags=()) -> Asset:
    asset = stored_asset(owner, jpeg_bytes(seed=seed), name)
    Asset.objects.filter(pk=asset.pk).update(created_at=datetime(2026, 4, day, 12, tzinfo=timezone.utc), kind=kind)
    for rank, label in enumerate(tags):
        ImageTag.objects.create(asset=asset, label=label, probability=0.5, rank=rank)
    return asset


@pytest.fixture
def shelf(user, other_user):
    ada = Subject.objects.create(owner=user, name="Ada")
    cluster = Subject.objects.create(owner=user, name="")
    beach = uploaded(user, "beach.jpg", 1, day=1, tags=("seashore", "sandbar"))
    party = uploaded(user, "party.jpg", 2, day=5, tags=("restaurant",))
    clip = uploaded(user, "clip.mp4", 3, day=9, kind="video", tags=("seashore",))
    empty = uploaded(user, "empty.jpg", 4, day=12)
    make_face(beach, subject=ada)
    make_face(party, subject=ada)
    make_face(party, subject=cluster, box=(50, 8, 80, 44))  # unknown: a person without a name
    make_face(clip, box=(5, 5, 30, 30))  # unknown: nobody
    make_face(empty, dismissed=True)  # not a face: no unknown face here
    theirs = uploaded(other_user, "theirs.jpg", 5, day=5, tags=("seashore",))
    make_face(theirs)
    return {"ada": ada, "beach": beach, "party": party, "clip": clip, "empty": empty}


@pytest.mark.parametrize("params, names", [
    ({}, ["empty.jpg", "clip.mp4", "party.jpg", "beach.jpg"]),
    ({"tag": "seashore"}, ["clip.mp4", "beach.jpg"]),
    ({"since": "2026-04-05", "until": "2026-04-09"}, ["clip.mp4", "party.jpg"]),
    ({"kind": "video"}, ["clip.mp4"]),
    ({"kind": "image", "tag": "seashore"}, ["beach.jpg"]),
    ({"unknown": "on"}, ["clip.mp4", "party.jpg"]),
    ({"name": "PAR"}, ["party.jpg"]),
    ({"name": "  beach "}, ["beach.jpg"]),
    ({"name": ".jpg", "tag": "seashore"}, ["beach.jpg"]),
    ({"name": "theirs"}, []),  # another user's file of that name
    ({"name": "%"}, []),  # a character, not a wildcard
    ({"name": "_"}, []),
])
def test_filters_find_the_users_own_assets(params, names, shelf, user):
    html = logged_in(user).get("/library/", params).content.decode()
    assert listed(html) == names
    assert "theirs.jpg" not in html


def test_the_person_filter_lists_the_photos_they_are_in(shelf, user):
    client = logged_in(user)
    assert listed(client.get("/library/", {"person": shelf["ada"].pk}).content.decode()) == ["party.jpg", "beach.jpg"]
    assert listed(client.get("/library/", {"person": shelf["ada"].pk, "unknown": "on"}).content.decode()) == [
        "party.jpg"]


def test_the_menus_offer_only_the_users_people_and_tags(shelf, user, other_user):
    theirs = Subject.objects.create(owner=other_user, name="Someone else")
    html = logged_in(user).get("/library/").content.decode()
    assert f'<option value="{shelf["ada"].pk}">Ada</option>' in html
    assert "Someone else" not in html
    assert re.findall(r'<option value="([a-z]+)">', html) == ["seashore", "restaurant", "sandbar", "image", "video"]
    response = logged_in(user).get("/library/", {"person": theirs.pk})
    assert response.status_code == 400  # not one of the choices: another user's person
    assert "theirs.jpg" not in response.content.decode()


def test_each_asset_shows_its_thumbnail_and_links_its_page(shelf, user):
    html = logged_in(user).get("/library/").content.decode()
    for asset in (shelf["beach"], shelf["party"]):
        assert f'href="/assets/{asset.pk}/"' in html
        assert f'src="/api/v1/assets/{asset.pk}/thumbnail/"' in html


def test_two_uploads_of_the_same_name_are_told_apart_by_their_time(user):
    """Phones name photos IMG_0001.jpg again and again: the upload time (to the minute) is
    shown with each."""
    uploaded(user, "img1.jpg", seed=1, day=3)
    second = uploaded(user, "img1.jpg", seed=2, day=3)
    Asset.objects.filter(pk=second.pk).update(created_at=datetime(2026, 4, 3, 12, 42, tzinfo=timezone.utc))
    html = logged_in(user).get("/library/").content.decode()
    assert listed(html) == ["img1.jpg", "img1.jpg"]
    assert "2026-04-03 12:42" in html and "2026-04-03 12:00" in html


def test_pages_keep_the_filters(user, django_assert_max_num_queries):
    for n in range(ASSETS_PER_PAGE + 3):
        uploaded(user, f"p{n:02d}.jpg", 100 + n, day=1 + n % 20, tags=("seashore",) if n % 2 else ())
    client = logged_in(user)
    with django_assert_max_num_queries(12):  # a fixed number, however many assets
        first = client.get("/library/", {"kind": "image"}).content.decode()
    assert len(listed(first)) == ASSETS_PER_PAGE
    assert 'href="?kind=image&amp;page=2"' in first
    second = client.get("/library/", {"kind": "image", "page": 2}).content.decode()
    assert len(listed(second)) == 3 and 'href="?kind=image&amp;page=1"' in second
    tagged = client.get("/library/", {"tag": "seashore"}).content.decode()
    assert len(listed(tagged)) == (ASSETS_PER_PAGE + 3) // 2


def test_an_inverted_period_is_explained(user):
    response = logged_in(user).get("/library/", {"since": "2026-04-09", "until": "2026-04-01"})
    assert response.status_code == 400
    assert "must be on or before" in response.content.decode()


def test_a_file_name_too_long_to_exist_is_explained(user):
    response = logged_in(user).get("/library/", {"name": "x" * 256})
    assert response.status_code == 400
    assert "at most 255 characters" in response.content.decode()


def test_anonymous_visitors_log_in_first(client):
    for url in ("/library/", "/library/duplicates/", "/faces/1/everywhere/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- near-duplicates ------------------------------------------------------------------------


def test_the_duplicates_page_groups_the_users_near_duplicate_photos(shelf, user, other_user):
    base = np.random.default_rng(3).random(1280)
    for asset, vector in ((shelf["beach"], base), (shelf["party"], base * 1.001 + 0.0001),
                          (shelf["empty"], np.random.default_rng(4).random(1280))):
        ImageEmbedding.objects.create(asset=asset, embedding=vector, model_version="test")
    theirs = uploaded(other_user, "their-copy.jpg", 9, day=2)
    ImageEmbedding.objects.create(asset=theirs, embedding=base, model_version="test")

    html = logged_in(user).get("/library/duplicates/").content.decode()
    assert "1 group, 2 photos" in html
    assert listed(html) == ["party.jpg", "beach.jpg"]  # newest first
    assert "their-copy.jpg" not in html and "empty.jpg" not in html
    bob = logged_in(other_user).get("/library/duplicates/").content.decode()
    assert "No near-duplicates" in bob and "beach.jpg" not in bob


# --- find this face everywhere --------------------------------------------------------------


def test_a_face_everywhere_lists_the_owners_nearest_faces_with_links(user, other_user):
    photos = [stored_asset(user, jpeg_bytes(seed=20 + n), f"photo-{n}.jpg") for n in range(4)]
    ada = Subject.objects.create(owner=user, name="Ada")
    probe = make_face(photos[0], embedding=unit_vector(1), subject=ada)
    close = make_face(photos[1], embedding=unit_vector(1) * 0.98 + unit_vector(2) * 0.02)
    far = make_face(photos[2], embedding=unit_vector(3))
    make_face(photos[3], embedding=unit_vector(1), dismissed=True)
    theirs = make_face(stored_asset(other_user, jpeg_bytes(seed=30), "theirs.jpg"), embedding=unit_vector(1))

    html = logged_in(user).get(f"/faces/{probe.pk}/everywhere/").content.decode()

    same = html[html.index("Probably the same person"):html.index("Less alike")]
    assert f'href="/assets/{photos[1].pk}/#face-{close.pk}"' in same
    assert f'src="/api/v1/faces/{close.pk}/crop/"' in same
    less = html[html.index("Less alike"):]
    assert f'href="/assets/{photos[2].pk}/#face-{far.pk}"' in less
    assert "photo-3.jpg" not in html and f"#face-{theirs.pk}" not in html
    assert f'href="/assets/{photos[0].pk}/#face-{probe.pk}"' in html  # back to the face searched for
    assert 'href="/people/' in html and "Ada" in html


def test_a_face_of_another_user_or_dismissed_is_404(user, other_user):
    face = make_face(stored_asset(user, jpeg_bytes(seed=40), "mine.jpg"))
    dismissed = make_face(face.asset, box=(50, 8, 80, 44), dismissed=True)
    assert logged_in(other_user).get(f"/faces/{face.pk}/everywhere/").status_code == 404
    assert logged_in(user).get(f"/faces/{dismissed.pk}/everywhere/").status_code == 404
    assert logged_in(user).get(f"/faces/{face.pk}/everywhere/").status_code == 200


def test_the_nav_links_the_library(user):
    html = logged_in(user).get("/library/").content.decode()
    assert '<a href="/library/" aria-current="page">Library</a>' in html


def test_filtered_by_a_person_each_thumbnail_is_pointed_at_them(user):
    """A group photo's thumbnail keeps its largest face in view; filtered by someone else in
    it, the library points it at them instead (a new user saw Biden's face on Obama's list)."""
    obama, biden = (Subject.objects.create(owner=user, name=name) for name in ("Obama", "Biden"))
    group = uploaded(user, "two_people.jpg", seed=1, day=3)
    Asset.objects.filter(pk=group.pk).update(width=1000, height=500, focus_x=0.75, focus_y=0.5)  # Biden's, larger
    make_face(group, subject=obama, box=(100, 100, 200, 200))
    make_face(group, subject=biden, box=(600, 100, 900, 400))

    def position(html):
        return re.search(r'object-position: ([\d.]+)% ([\d.]+)%', html).groups()

    client = logged_in(user)
    assert position(client.get("/library/").content.decode()) == ("75.0", "50.0")
    assert position(client.get(f"/library/?person={obama.pk}").content.decode()) == ("15.0", "30.0")
    assert position(client.get(f"/library/?person={biden.pk}").content.decode()) == ("75.0", "50.0")
    group.refresh_from_db()
    assert (group.focus_x, group.focus_y) == (0.75, 0.5)  # the stored focus is left as it was
