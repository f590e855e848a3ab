"""Browser pages of recognition: dashboard with uploads, asset page, people; owner-scoped."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from media import services as media_services
from recognition.models import Face, ImageTag, Job, Subject

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def jpeg_bytes(seed: int = 0, size=(120, 80)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_asset(owner, seed: int = 0, name: str = "beach.jpg", stage: str = "completed", error: str = ""):
    asset = media_services.ingest_upload(owner, SimpleUploadedFile(name, jpeg_bytes(seed))).asset
    Job.objects.create(asset=asset, stage=stage, progress=100 if stage == "completed" else 30, error=error,
                       timings={"detecting": {"started_at": "2026-01-01T00:00:00+00:00",
                                              "ended_at": "2026-01-01T00:00:01+00:00", "seconds": 1.25}})
    return asset


def make_face(asset, subject=None, box=(12, 8, 60, 56), quality=0.8, **fields) -> Face:
    from django.core.files.base import ContentFile

    from tests.integration.recognition.api_helpers import crop_bytes

    face = Face.objects.create(
        asset=asset, owner_id=asset.owner_id, box=list(box), landmarks=[[20, 20]] * 5, score=0.99, quality=quality,
        embedding=np.full(128, 0.05, dtype=np.float32), model_version="test", subject=subject, **fields,
    )
    face.crop.save("crop.jpg", ContentFile(crop_bytes()))
    return face


def logged_in(user, enforce_csrf=False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


def csrf_token(client) -> str:
    client.get(reverse("dashboard"))
    return client.cookies[settings.CSRF_COOKIE_NAME].value


# --- anonymous visitors -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/people/", "/people/1/", "/assets/1/"])
def test_pages_redirect_anonymous_visitors_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('accounts:login')}?next=")


def test_upload_redirects_anonymous_visitors_and_stores_nothing(client):
    response = client.post(reverse("upload"), {"files": SimpleUploadedFile("a.jpg", jpeg_bytes())})
    assert response.status_code == 302
    assert not Job.objects.exists()


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_shows_counts_and_only_the_users_own_assets(user, other_user, django_assert_max_num_queries):
    mine = make_asset(user, seed=1, name="mine.jpg")
    failed = make_asset(user, seed=2, name="broken.jpg", stage="failed", error="boom")
    alice = Subject.objects.create(owner=user, name="Alice")
    make_face(mine, subject=alice, match_distance=0.41)
    make_face(mine)
    make_face(failed)
    make_face(failed, subject=alice)
    to_name, hidden, emptied = (Subject.objects.create(owner=user, name="", hidden=h) for h in (False, True, False))
    make_face(mine, subject=to_name, box=(50, 8, 80, 44))
    make_face(failed, subject=hidden, box=(50, 8, 80, 44))
    assert not emptied.faces.exists()  # its faces went elsewhere: nothing to name
    theirs = make_asset(other_user, seed=3, name="theirs.jpg")
    make_face(theirs)
    make_face(theirs, subject=Subject.objects.create(owner=other_user, name=""), box=(50, 8, 80, 44))
    client = logged_in(user)

    with django_assert_max_num_queries(12):  # fixed, however many rows
        response = client.get(reverse("dashboard"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "mine.jpg" in html and "broken.jpg" in html
    assert "theirs.jpg" not in html and f'data-asset="{theirs.pk}"' not in html
    counts = response.context["counts"]
    assert (counts.photos, counts.videos, counts.faces, counts.people, counts.recognised_percent) == (2, 0, 6, 1, 33)
    # Named people, and the groups of unknown faces the people page offers to name (a new user
    # read "0 people" while the people page listed five to name).
    assert counts.people_to_name == 1 and ">person to name</span>" in html  # one person, not "1 people"
    assert ">named person</span>" in html  # counts.people == 1 too
    assert "33%" in html
    assert "failed: boom" in html
    assert f'src="/api/v1/assets/{mine.pk}/thumbnail/"' in html
    assert 'data-job-stream="/ws/jobs/"' in html
    assert "Nothing uploaded yet" not in html or 'data-role="empty-state" hidden' in html


def test_dashboard_references_only_local_files(user):
    make_asset(user)
    html = logged_in(user).get(reverse("dashboard")).content.decode()

    references = re.findall(r'(?:src|href|action)="([^"]*)"', html)
    assert references
    for reference in references:
        assert not re.match(r"^(?:[a-z]+:)?//", reference), reference
    assert "/static/js/jobs.js" in html and "/static/js/dashboard.js" in html


def test_nav_links_pages_and_admin_for_staff_only(user, staff_user):
    html = logged_in(user).get(reverse("people")).content.decode()
    assert 'href="/"' in html and 'href="/people/"' in html and 'href="/api/docs/"' in html
    assert 'action="/logout/"' in html and 'href="/admin/"' not in html
    assert 'href="/admin/"' in logged_in(staff_user).get(reverse("people")).content.decode()


def test_the_scripts_are_served_and_load_nothing_remote():
    from django.contrib.staticfiles import finders

    for name in ("js/jobs.js", "js/dashboard.js", "js/asset.js"):
        script = open(finders.find(name)).read()
        assert "http://" not in script and "https://" not in script and "import " not in script


# --- upload -----------------------------------------------------------------------------------


def test_upload_of_a_photo_creates_a_job_and_answers_json(user):
    client = logged_in(user, enforce_csrf=True)
    token = csrf_token(client)

    response = client.post(reverse("upload"), {"files": SimpleUploadedFile("cat.jpg", jpeg_bytes(5))},
                           HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200
    [result] = response.json()["results"]
    job = Job.objects.get(asset__owner=user)
    assert result["ok"] and result["created"] and result["job"] == job.pk and result["asset"] == job.asset_id
    assert job.stage == "queued"
    assert f'data-asset="{job.asset_id}"' in result["row_html"] and "cat.jpg" in result["row_html"]


def test_upload_of_several_files_reports_each_and_keeps_the_good_ones(user):
    client = logged_in(user)
    files = [SimpleUploadedFile("good.jpg", jpeg_bytes(6)), SimpleUploadedFile("evil.jpg", b"just some text\n" * 20)]

    response = client.post(reverse("upload"), {"files": files}, HTTP_ACCEPT="application/json")

    good, evil = response.json()["results"]
    assert response.status_code == 200
    assert good["ok"] and not evil["ok"]
    assert evil["message"] and evil["status"] in (400, 415)
    assert Job.objects.filter(asset__owner=user).count() == 1


def test_upload_of_a_text_file_named_jpg_is_refused_with_a_message(user):
    response = logged_in(user).post(
        reverse("upload"), {"files": SimpleUploadedFile("photo.jpg", b"not an image at all\n" * 50)},
        HTTP_ACCEPT="application/json",
    )

    assert 400 <= response.status_code < 500
    [result] = response.json()["results"]
    assert not result["ok"] and result["name"] == "photo.jpg" and len(result["message"]) > 10
    assert not Job.objects.exists()


def test_upload_without_files_is_a_400_with_a_message(user):
    response = logged_in(user).post(reverse("upload"), {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "Choose at least one" in response.json()["message"]


def test_upload_without_csrf_token_is_forbidden(user):
    response = logged_in(user, enforce_csrf=True).post(
        reverse("upload"), {"files": SimpleUploadedFile("cat.jpg", jpeg_bytes())}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_upload_without_javascript_redirects_with_a_message_per_file(user):
    client = logged_in(user)
    files = [SimpleUploadedFile("good.jpg", jpeg_bytes(7)), SimpleUploadedFile("bad.jpg", b"text" * 100)]

    response = client.post(reverse("upload"), {"files": files}, follow=True)

    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    texts = [str(message) for message in response.context["messages"]]
    assert any(text.startswith("good.jpg: uploaded") for text in texts)
    assert any(text.startswith("bad.jpg: ") for text in texts)


def test_uploading_the_same_file_again_says_so(user):
    client = logged_in(user)
    data = jpeg_bytes(8)
    client.post(reverse("upload"), {"files": SimpleUploadedFile("a.jpg", data)}, HTTP_ACCEPT="application/json")

    again = client.post(reverse("upload"), {"files": SimpleUploadedFile("b.jpg", data)}, HTTP_ACCEPT="application/json")

    [result] = again.json()["results"]
    assert result["ok"] and not result["created"] and "already" in result["message"]
    assert Job.objects.count() == 1


# --- asset page -------------------------------------------------------------------------------


def test_asset_page_draws_faces_lists_crops_tags_and_timings(user, django_assert_max_num_queries):
    asset = make_asset(user, name="party.jpg")
    bob = Subject.objects.create(owner=user, name="Bob")
    known = make_face(asset, subject=bob, match_distance=0.3712, box=(12, 8, 60, 56))
    unknown = make_face(asset, box=(0, 0, 30, 40))
    ImageTag.objects.create(asset=asset, label="seashore", probability=0.83, rank=0)
    ImageTag.objects.create(asset=asset, label="balance beam", probability=0.15, rank=1)
    ImageTag.objects.create(asset=asset, label="sandbar", probability=0.49, rank=2)
    client = logged_in(user)

    with django_assert_max_num_queries(14):
        response = client.get(reverse("asset", args=[asset.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'src="/api/v1/assets/{asset.pk}/file/"' in html
    assert f'src="/api/v1/faces/{known.pk}/crop/"' in html and f'src="/api/v1/faces/{unknown.pk}/crop/"' in html
    # 12/120 px from the left, 8/80 from the top, 48 wide, 48 high: percentages of the picture
    assert "left: 10.000%; top: 10.000%; width: 40.000%; height: 60.000%;" in html
    assert "<span class=\"face-name\"> Bob</span>" in html and "unknown" in html
    assert "high confidence (distance 0.37)" in html
    assert '<li class="tag">seashore <span class="muted">83%</span></li>' in html
    # Under one in two, a tag is a guess, and says so apart from the tags.
    assert "Guesses: balance beam (15%), sandbar (49%)</p>" in html and html.count('class="tag"') == 1
    assert "detecting" in html and "1.25" in html
    assert f'action="/faces/{unknown.pk}/assign/"' in html
    assert f'action="/assets/{asset.pk}/rerun/"' in html


def test_asset_page_without_tags_says_whether_the_tagger_has_run(user):
    running, done = make_asset(user, stage="detecting"), make_asset(user, seed=1, name="dark.jpg")

    waiting = logged_in(user).get(reverse("asset", args=[running.pk])).content.decode()
    finished = logged_in(user).get(reverse("asset", args=[done.pk])).content.decode()

    assert "No tags yet." in waiting and "recognised nothing" not in waiting
    assert "None: the tagger recognised nothing in it with any confidence." in finished
    assert "No tags yet." not in finished


def test_find_a_face_everywhere_offers_the_clear_faces_by_their_numbers(user):
    asset = make_asset(user, name="crowd.jpg")
    clear = make_face(asset, box=(0, 0, 60, 60), quality=0.9)
    blurred = make_face(asset, box=(70, 0, 80, 10), quality=0.05)

    html = logged_in(user).get(reverse("asset", args=[asset.pk])).content.decode()

    assert f'href="/faces/{clear.pk}/everywhere/">Face 1</a>' in html
    assert f"/faces/{blurred.pk}/everywhere/" not in html  # too unclear to be looked for


def test_asset_page_of_a_running_job_streams_it(user):
    asset = make_asset(user, stage="detecting")
    job = asset.jobs.get()
    html = logged_in(user).get(reverse("asset", args=[asset.pk])).content.decode()
    assert f'data-job-stream="/ws/jobs/{job.pk}/"' in html
    assert "/static/js/asset.js" in html


def test_a_video_lists_its_appearances_on_a_timeline(user):
    from recognition.models import Appearance

    asset = make_asset(user, name="clip.mp4")
    asset.kind, asset.duration_seconds = "video", 20.0
    asset.save(update_fields=["kind", "duration_seconds"])
    carol = Subject.objects.create(owner=user, name="Carol")
    faces = [make_face(asset, subject=carol, frame_index=i, timestamp=12.5 + i / 2) for i in range(3)]
    appearance = Appearance.objects.create(asset=asset, owner=user, start_seconds=12.5, end_seconds=13.5,
                                           best_face=faces[1], embedding=[0.0] * 128, face_count=3)
    Face.objects.filter(asset=asset).update(appearance=appearance)

    html = logged_in(user).get(reverse("asset", args=[asset.pk])).content.decode()

    assert "Who appears when" in html and 'aria-label="Carol, from 12.5 s to 13.5 s"' in html
    assert "left: 62.500%; width: 5.000%;" in html  # 12.5 s of 20, for 1 s
    assert "12.5–13.5 s</a>, 3 frames" in html  # one item for the track, not one per frame
    assert html.count('class="face-item"') == 1
    assert "face-box" not in html and "<video" in html and 'id="video-faces"' in html


def test_other_users_get_404_on_asset_crop_and_person_pages(user, other_user):
    asset = make_asset(user)
    face = make_face(asset)
    subject = Subject.objects.create(owner=user, name="Carol")
    intruder = logged_in(other_user)

    assert intruder.get(reverse("asset", args=[asset.pk])).status_code == 404
    assert intruder.get(reverse("person", args=[subject.pk])).status_code == 404
    assert intruder.get(f"/api/v1/faces/{face.pk}/crop/").status_code == 404
    assert intruder.get(f"/api/v1/assets/{asset.pk}/file/").status_code == 404
    assert intruder.post(reverse("asset-rerun", args=[asset.pk])).status_code == 404
    assert intruder.post(reverse("face-assign", args=[face.pk]), {"subject": ""}).status_code == 404
    assert asset.jobs.count() == 1


def test_the_owner_gets_the_crop_through_the_session(user):
    face = make_face(make_asset(user))
    response = logged_in(user).get(f"/api/v1/faces/{face.pk}/crop/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"


def test_rerun_starts_a_new_job(user):
    asset = make_asset(user)
    client = logged_in(user, enforce_csrf=True)
    token = csrf_token(client)

    response = client.post(reverse("asset-rerun", args=[asset.pk]), {"csrfmiddlewaretoken": token}, follow=True)

    assert response.redirect_chain == [(reverse("asset", args=[asset.pk]), 302)]
    assert asset.jobs.count() == 2
    assert asset.jobs.order_by("-created_at", "-id").first().stage == "queued"
    assert f"Processing {asset.original_name} again." in response.content.decode()


def test_rerun_is_refused_while_a_job_is_running(user):
    asset = make_asset(user, stage="detecting")
    response = logged_in(user).post(reverse("asset-rerun", args=[asset.pk]), follow=True)
    assert "still being processed" in response.content.decode()
    assert asset.jobs.count() == 1


def test_rerun_needs_post_and_csrf(user):
    asset = make_asset(user)
    client = logged_in(user, enforce_csrf=True)
    assert client.get(reverse("asset-rerun", args=[asset.pk])).status_code == 405
    assert client.post(reverse("asset-rerun", args=[asset.pk])).status_code == 403
    assert asset.jobs.count() == 1


# --- naming faces -----------------------------------------------------------------------------


def test_assigning_a_face_to_a_person_and_back_to_unknown(user):
    asset = make_asset(user)
    face = make_face(asset, match_distance=0.5)
    dana = Subject.objects.create(owner=user, name="Dana")
    client = logged_in(user)

    response = client.post(reverse("face-assign", args=[face.pk]), {"subject": dana.pk})

    assert response.status_code == 302 and response["Location"] == f"{reverse('asset', args=[asset.pk])}#face-{face.pk}"
    face.refresh_from_db()
    assert face.subject == dana and face.match_distance is None

    client.post(reverse("face-assign", args=[face.pk]), {"subject": ""})
    face.refresh_from_db()
    assert face.subject is None


def test_assigning_a_face_to_someone_elses_person_is_refused(user, other_user, staff_user):
    face = make_face(make_asset(user))
    foreign = Subject.objects.create(owner=other_user, name="Eve")

    assert logged_in(user).post(reverse("face-assign", args=[face.pk]), {"subject": foreign.pk}).status_code == 400
    # Staff may see both, but a face still only goes to its owner's people.
    assert logged_in(staff_user).post(reverse("face-assign", args=[face.pk]), {"subject": foreign.pk}).status_code == 400
    face.refresh_from_db()
    assert face.subject is None


# --- people -----------------------------------------------------------------------------------


def test_people_page_lists_own_people_with_counts(user, other_user, django_assert_max_num_queries):
    asset = make_asset(user)
    frank = Subject.objects.create(owner=user, name="Frank")
    make_face(asset, subject=frank, is_example=True)
    make_face(asset, subject=frank)
    Subject.objects.create(owner=user, name="Gina")
    Subject.objects.create(owner=other_user, name="Hidden Harry")
    client = logged_in(user)

    with django_assert_max_num_queries(6):
        response = client.get(reverse("people"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Frank" in html and "Gina" in html and "Hidden Harry" not in html
    rows = {subject.name: (subject.example_count, subject.face_count) for subject in response.context["people"]}
    assert rows == {"Frank": (1, 2), "Gina": (0, 0)}


def test_creating_a_person_and_refusing_a_duplicate_name_in_another_case(user, other_user):
    Subject.objects.create(owner=other_user, name="Ivy")  # another owner's Ivy is no clash
    client = logged_in(user, enforce_csrf=True)
    token = csrf_token(client)

    created = client.post(reverse("people"), {"name": "Ivy", "notes": "", "csrfmiddlewaretoken": token})
    subject = Subject.objects.get(owner=user)
    assert created.status_code == 302 and created["Location"] == reverse("person", args=[subject.pk])

    duplicate = client.post(reverse("people"), {"name": "iVY", "csrfmiddlewaretoken": token})
    assert duplicate.status_code == 400
    assert "You already have a person called" in duplicate.content.decode()
    assert Subject.objects.filter(owner=user).count() == 1


def test_creating_a_person_without_csrf_is_forbidden(user):
    response = logged_in(user, enforce_csrf=True).post(reverse("people"), {"name": "Jack"})
    assert response.status_code == 403
    assert not Subject.objects.exists()


def test_person_page_shows_their_faces_across_assets(user, django_assert_max_num_queries):
    kim = Subject.objects.create(owner=user, name="Kim")
    first = make_asset(user, seed=10, name="one.jpg")
    second = make_asset(user, seed=11, name="two.jpg")
    faces = [make_face(first, subject=kim), make_face(second, subject=kim)]
    make_face(second)  # unknown: not Kim's
    client = logged_in(user)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("person", args=[kim.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    for face in faces:
        assert f'href="/assets/{face.asset_id}/#face-{face.pk}"' in html
        assert f'src="/api/v1/faces/{face.pk}/crop/"' in html
    assert "one.jpg" in html and "two.jpg" in html
    assert "2 faces" in html


def test_dashboard_counts_are_the_users_own(user, other_user):
    make_asset(user)
    make_asset(other_user)
    response = logged_in(user).get(reverse("dashboard-counts"))
    assert response.status_code == 200
    assert response.json()["photos"] == 1
    assert Client().get(reverse("dashboard-counts")).status_code == 302  # to the login page
