"""Uploads through the API: accepted, deduplicated, listed, streamed back, deleted, refused."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from media.models import Asset
from recognition.models import ImageTag, Job
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset, upload_of
from tests.unit.media import samples

pytestmark = pytest.mark.django_db

ASSETS = "/api/v1/assets/"


def post_file(client, data: bytes, name: str = "photo.jpg"):
    return client.post(ASSETS, {"file": upload_of(data, name)}, format="multipart")


def test_a_new_upload_is_accepted_with_its_job_and_the_same_bytes_again_answer_200(auth_client, user):
    data = jpeg_bytes()

    first = post_file(auth_client, data, "holiday.jpg")
    again = post_file(auth_client, data, "renamed.jpg")

    assert first.status_code == 202, first.json()
    body = first.json()
    job = Job.objects.get(pk=body["job"]["id"])
    assert job.asset_id == body["asset"]["id"]
    assert body["job_url"].endswith(f"/api/v1/jobs/{job.pk}/")
    assert body["job"]["stage"] == "queued"
    assert body["asset"]["original_name"] == "holiday.jpg"
    assert (body["asset"]["kind"], body["asset"]["width"], body["asset"]["height"]) == ("image", 96, 64)
    assert body["asset"]["latest_job"]["id"] == job.pk
    assert again.status_code == 200
    assert again.json()["asset"]["id"] == body["asset"]["id"]
    assert again.json()["job"]["id"] == job.pk
    assert Asset.objects.filter(owner=user).count() == 1


def test_a_new_uploads_answer_is_what_reading_the_asset_back_gives(auth_client, user, django_assert_max_num_queries):
    """The answer to a new upload is built from the rows the upload wrote, not read back:
    it must still say exactly what a GET of the asset says."""
    with django_assert_max_num_queries(8):
        answer = post_file(auth_client, jpeg_bytes(seed=3), "fresh.jpg").json()
    read_back = auth_client.get(f"{ASSETS}{answer['asset']['id']}/").json()
    assert answer["asset"] == read_back
    assert (answer["asset"]["face_count"], answer["asset"]["tags"]) == (0, [])


def test_upload_without_a_file_is_a_400_with_a_message(auth_client):
    response = auth_client.post(ASSETS, {}, format="multipart")

    assert response.status_code == 400
    assert response.json()["message"].startswith("file:")


def test_list_filters_orders_and_counts_without_a_query_per_row(auth_client, user, django_assert_max_num_queries):
    from recognition.models import Subject

    photos = [stored_asset(user, jpeg_bytes(seed=seed), f"p{seed}.jpg") for seed in range(3)]
    video = stored_asset(user, samples.synthetic_video(), "clip.mp4")
    ada = Subject.objects.create(owner=user, name="Ada")
    make_face(photos[1], subject=ada)
    make_face(photos[1])
    ImageTag.objects.create(asset=photos[1], label="tabby", probability=0.7, rank=0)
    Asset.objects.filter(pk=photos[0].pk).update(created_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))

    with django_assert_max_num_queries(6):
        everything = auth_client.get(ASSETS).json()
    videos = auth_client.get(ASSETS, {"kind": "video"}).json()
    of_ada = auth_client.get(ASSETS, {"subject": ada.pk}).json()
    old = auth_client.get(ASSETS, {"created_before": "2020-01-31"}).json()
    recent = auth_client.get(ASSETS, {"created_after": "2021-01-01", "ordering": "original_name"}).json()

    assert everything["count"] == 4
    by_id = {row["id"]: row for row in everything["results"]}
    assert by_id[photos[1].pk]["face_count"] == 2
    assert by_id[photos[1].pk]["tags"] == [{"label": "tabby", "probability": 0.7}]
    assert by_id[photos[1].pk]["latest_job"]["stage"] == "completed"
    assert [row["id"] for row in videos["results"]] == [video.pk]
    assert by_id[video.pk]["duration_seconds"] == pytest.approx(2.0, abs=0.3)
    assert [row["id"] for row in of_ada["results"]] == [photos[1].pk]
    assert [row["id"] for row in old["results"]] == [photos[0].pk]
    assert [row["original_name"] for row in recent["results"]] == ["clip.mp4", "p1.jpg", "p2.jpg"]


def test_assets_are_found_by_part_of_their_name_among_the_users_own(auth_client, user, other_user):
    for seed, name in enumerate(["Beach 2024.jpg", "beach-party.png", "office.jpg"]):
        stored_asset(user, jpeg_bytes(seed=seed), name)
    stored_asset(other_user, jpeg_bytes(seed=9), "their beach.jpg")

    def names(**params):
        response = auth_client.get(ASSETS, {"ordering": "original_name", **params})
        assert response.status_code == 200, response.json()
        return [row["original_name"] for row in response.json()["results"]]

    assert names(name="BEACH") == ["Beach 2024.jpg", "beach-party.png"]
    assert names(name="beach", kind="image") == ["Beach 2024.jpg", "beach-party.png"]
    assert names(name="%") == [] and names(name="their") == []
    assert auth_client.get(ASSETS, {"name": "x" * 256}).status_code == 400


def test_the_original_and_the_thumbnail_stream_with_the_sanitised_name(auth_client, user):
    data = jpeg_bytes()
    asset = stored_asset(user, data, "../../holiday\u202e.jpg")

    original = auth_client.get(f"{ASSETS}{asset.pk}/file/")
    thumbnail = auth_client.get(f"{ASSETS}{asset.pk}/thumbnail/")

    assert original.status_code == 200
    assert b"".join(original.streaming_content) == data
    assert original["Content-Type"] == "image/jpeg"
    assert original["Content-Disposition"] == 'inline; filename="holiday.jpg"'
    assert thumbnail.status_code == 200
    assert b"".join(thumbnail.streaming_content)[:3] == b"\xff\xd8\xff"
    assert 'filename="holiday-thumbnail.jpg"' in thumbnail["Content-Disposition"]
    # Browsers may keep them; shared caches may not (they are one user's).
    assert original["Cache-Control"] == thumbnail["Cache-Control"] == "private, max-age=3600"


@pytest.mark.parametrize(("header", "part"), [
    ("bytes=100-199", slice(100, 200)),
    ("bytes=1000-", slice(1000, None)),
    ("bytes=-50", slice(-50, None)),
    ("bytes=10-999999999", slice(10, None)),  # an end past the file: up to its end
])
def test_the_original_is_sent_by_byte_range_so_a_video_can_be_seeked(auth_client, user, header, part):
    """Chromium seeks in a video by asking for byte ranges; without 206 answers it cannot."""
    data = samples.synthetic_video()
    asset = stored_asset(user, data, "clip.mp4")
    response = auth_client.get(f"{ASSETS}{asset.pk}/file/", HTTP_RANGE=header)
    body = b"".join(response.streaming_content)
    assert response.status_code == 206
    assert body == data[part]
    start = part.start if part.start >= 0 else len(data) + part.start
    assert response["Content-Range"] == f"bytes {start}-{start + len(body) - 1}/{len(data)}"
    assert response["Content-Length"] == str(len(body)) and response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["", "bytes=0-10,20-30", "bytes=-", "lines=1-2", "bytes=x-y"])
def test_no_range_or_one_we_do_not_serve_gets_the_whole_file(auth_client, user, header):
    data = jpeg_bytes()
    asset = stored_asset(user, data, "p.jpg")
    response = auth_client.get(f"{ASSETS}{asset.pk}/file/", **({"HTTP_RANGE": header} if header else {}))
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert response["Accept-Ranges"] == "bytes"


def test_a_range_past_the_end_is_416_and_another_users_file_404_whatever_the_range(auth_client, user, other_user):
    data = jpeg_bytes()
    mine, theirs = stored_asset(user, data, "p.jpg"), stored_asset(other_user, data, "q.jpg")
    past = auth_client.get(f"{ASSETS}{mine.pk}/file/", HTTP_RANGE=f"bytes={len(data)}-")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{len(data)}"
    assert auth_client.get(f"{ASSETS}{theirs.pk}/file/", HTTP_RANGE="bytes=0-10").status_code == 404


def test_delete_removes_the_asset_its_faces_jobs_and_files(auth_client, user, django_capture_on_commit_callbacks):
    asset = stored_asset(user, jpeg_bytes())
    make_face(asset)
    files = [asset.file.name, asset.thumbnail.name]
    assert all(default_storage.exists(name) for name in files)

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.delete(f"{ASSETS}{asset.pk}/")

    assert response.status_code == 204
    assert not Asset.objects.filter(pk=asset.pk).exists()
    assert not Job.objects.filter(asset_id=asset.pk).exists()
    assert not any(default_storage.exists(name) for name in files)
    assert auth_client.get(f"{ASSETS}{asset.pk}/").status_code == 404


def png_decompression_bomb() -> bytes:
    """A real, valid PNG of 10000×10000 1-bit pixels (100 Mpx, over the limit) in a few KB."""
    import struct
    import zlib

    width = height = 10_000
    row = b"\x00" + b"\x00" * (width // 8)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height, 9))
            + chunk(b"IEND", b""))


HOSTILE_UPLOADS = {
    "zero bytes": (lambda: b"", "empty.jpg", 400, "empty"),
    "truncated JPEG": (lambda: samples.noisy_jpeg()[:6000], "cut.jpg", 400, "corrupt"),
    "text file named .jpg": (lambda: b"just some words, not a picture\n" * 20, "notes.jpg", 415, "unsupported_type"),
    "HTML": (lambda: b"<!doctype html><html><body><script>alert(1)</script></body></html>", "page.jpg", 415,
             "unsupported_type"),
    "SVG": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/>'
                    b"<script>alert(1)</script></svg>", "logo.svg", 415, "unsupported_type"),
    "PNG decompression bomb (10000x10000, 1-bit)": (png_decompression_bomb, "bomb.png", 400, "too_many_pixels"),
    "30000x30000 PNG header": (lambda: samples.png_claiming(30000, 30000), "huge.png", 400, "too_many_pixels"),
    "video with no frames (audio-only MP4)": (samples.audio_only_mp4, "silent.mp4", 400, "no_frames"),
    "oversized body (limit set to 4 KB)": (lambda: samples.noisy_jpeg(), "big.jpg", 413, "too_large"),
}


@pytest.mark.parametrize("case", HOSTILE_UPLOADS)
def test_hostile_uploads_are_refused_with_a_clear_status_and_nothing_is_stored(case, auth_client, settings):
    make_data, name, expected_status, expected_code = HOSTILE_UPLOADS[case]
    if "oversized" in case:
        settings.SIGHTLINE_MAX_UPLOAD_BYTES = settings.SIGHTLINE_MAX_VIDEO_BYTES = 4096

    response = post_file(auth_client, make_data(), name)

    body = response.json()
    print(f"| {case} | {response.status_code} | {body.get('code')} | {body.get('message')} |")
    assert (response.status_code, body["code"]) == (expected_status, expected_code)
    assert body["status"] == expected_status
    assert len(body["message"]) > 10
    assert not Asset.objects.exists()


def test_a_path_traversal_name_is_accepted_but_only_its_sanitised_last_part_is_kept(auth_client, user):
    response = post_file(auth_client, jpeg_bytes(), "../../../etc/cron.d/evil\x00.jpg")

    assert response.status_code == 202
    asset = Asset.objects.get(pk=response.json()["asset"]["id"])
    print(f"| path-traversal name | 202 | - | stored as {asset.original_name!r} at {asset.file.name} |")
    assert asset.original_name == "evil.jpg"
    assert asset.file.name.startswith(f"assets/{user.pk}/")
    assert ".." not in asset.file.name and "evil" not in asset.file.name


@pytest.mark.django_db(transaction=True)
def test_a_file_that_breaks_in_the_pipeline_fails_its_job_and_the_worker_goes_on(auth_client, faces_dir, run_jobs):
    broken = post_file(auth_client, jpeg_bytes(size=(320, 240)), "soon-broken.jpg").json()
    good = post_file(auth_client, (faces_dir / "probes" / "obama1.jpg").read_bytes(), "obama1.jpg").json()
    # Damage the stored original after it was accepted (a disk fault, a bad sync).
    stored = Path(Asset.objects.get(pk=broken["asset"]["id"]).file.path)
    stored.write_bytes(stored.read_bytes()[:200])

    run_jobs()

    failed = auth_client.get(broken["job_url"]).json()
    completed = auth_client.get(good["job_url"]).json()
    assert (failed["stage"], failed["error_code"]) == ("failed", "corrupt")
    assert "damaged" in failed["error"]
    assert completed["stage"] == "completed", completed
    assert auth_client.get(f"{ASSETS}{good['asset']['id']}/").json()["face_count"] == 1
