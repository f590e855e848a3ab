"""media.services against the real database and a real (temporary) file storage."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.db import OperationalError, transaction
from PIL import Image

from media.models import Asset
from media.services import (
    IngestResult,
    RejectedUpload,
    decode_uploaded_image,
    ingest_upload,
    iter_video_frames,
    load_image,
    open_original,
)
from tests.unit.media import samples

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user fixtures
    return tmp_path


def stored_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def upload(data: bytes, name: str = "photo.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_ingest_stores_an_image_under_our_own_path(user, media_root):
    data = samples.image_bytes(samples.solid(size=(640, 480)), "PNG")
    result = ingest_upload(user, upload(data, "../../etc/passwd.jpg"))

    assert isinstance(result, IngestResult) and result.created
    asset = Asset.objects.get()
    assert asset == result.asset
    assert asset.original_name == "passwd.jpg"
    assert (asset.kind, asset.content_type, asset.width, asset.height) == ("image", "image/png", 640, 480)
    assert asset.size_bytes == len(data)
    assert asset.file.name == f"assets/{user.pk}/{asset.sha256[:2]}/{asset.sha256}.png"
    with open_original(asset) as original:
        assert original.read() == data
    with Image.open(asset.thumbnail.path) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("JPEG", (320, 240))
    assert stored_files(media_root) == sorted([asset.file.name, asset.thumbnail.name])


def test_original_name_argument_wins_over_the_file_name(user):
    data = samples.image_bytes(samples.solid(), "JPEG")
    asset = ingest_upload(user, upload(data, "tmp123"), original_name="beach/holiday.jpg").asset
    assert asset.original_name == "holiday.jpg"


def test_plain_binary_files_and_temporary_uploads_are_accepted(user, other_user, tmp_path):
    data = samples.image_bytes(samples.solid(), "WEBP")
    path = tmp_path / "in.webp"
    path.write_bytes(data)
    with path.open("rb") as plain:
        assert ingest_upload(user, plain).asset.original_name == "in.webp"

    temporary = TemporaryUploadedFile("big.webp", "image/webp", len(data), None)
    temporary.write(data)
    asset = ingest_upload(other_user, temporary).asset
    assert asset.content_type == "image/webp"
    temporary.close()


def test_same_bytes_twice_are_stored_once_per_owner(user, other_user, media_root):
    data = samples.image_bytes(samples.solid(), "JPEG")
    first = ingest_upload(user, upload(data, "a.jpg"))
    again = ingest_upload(user, upload(data, "b.jpg"))
    theirs = ingest_upload(other_user, upload(data, "a.jpg"))

    assert first.created and not again.created and theirs.created
    assert again.asset.pk == first.asset.pk and again.asset.original_name == "a.jpg"
    assert theirs.asset.pk != first.asset.pk
    assert len(stored_files(media_root)) == 4  # one original and one thumbnail per owner


def test_losing_a_concurrent_race_returns_the_winners_asset(user, media_root, monkeypatch):
    """Both uploads passed the duplicate check before either saved: the loser's INSERT hits the
    unique constraint and it hands back the winner's asset, leaving no file of its own."""
    data = samples.image_bytes(samples.solid(), "PNG")
    winner = ingest_upload(user, upload(data)).asset
    files_before = stored_files(media_root)
    unfiltered = Asset.objects.filter
    calls = []

    def filter_missing_the_winner_once(*args, **kwargs):
        calls.append(kwargs)
        return Asset.objects.none() if len(calls) == 1 else unfiltered(*args, **kwargs)

    monkeypatch.setattr(Asset.objects, "filter", filter_missing_the_winner_once)
    with transaction.atomic():
        result = ingest_upload(user, upload(data))
        assert Asset.objects.count() == 1  # the surrounding transaction is still usable
    assert (result.asset.pk, result.created) == (winner.pk, False)
    assert stored_files(media_root) == files_before


def test_a_failed_insert_leaves_no_files_behind(user, media_root, monkeypatch):
    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(Asset, "save", database_gone)
    with pytest.raises(OperationalError):
        ingest_upload(user, upload(samples.image_bytes(samples.solid(), "PNG")))
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"", "empty.jpg", ("empty", 400)),
        (b"not an image at all\n" * 10, "notes.jpg", ("unsupported_type", 415)),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.png", ("unsupported_type", 415)),
        (samples.png_claiming(30000, 30000), "bomb.png", ("too_many_pixels", 400)),
    ],
)
def test_refused_uploads_store_nothing(user, media_root, data, name, expected):
    with pytest.raises(RejectedUpload) as caught:
        ingest_upload(user, upload(data, name))
    assert (caught.value.code, caught.value.status) == expected
    assert not Asset.objects.exists()
    assert stored_files(media_root) == []


def test_oversize_upload_is_refused(user, settings):
    settings.SIGHTLINE_MAX_UPLOAD_BYTES = settings.SIGHTLINE_MAX_VIDEO_BYTES = 1000
    with pytest.raises(RejectedUpload) as caught:
        ingest_upload(user, upload(samples.noisy_jpeg()))
    assert (caught.value.code, caught.value.status) == ("too_large", 413)


def test_deleting_an_asset_removes_its_files_after_commit(user, media_root, django_capture_on_commit_callbacks):
    asset = ingest_upload(user, upload(samples.image_bytes(samples.solid(), "PNG"))).asset
    with django_capture_on_commit_callbacks(execute=True):
        asset.delete()
        assert len(stored_files(media_root)) == 2  # still there until the commit
    assert stored_files(media_root) == []


def test_queryset_and_cascade_deletes_remove_files(user, other_user, media_root, django_capture_on_commit_callbacks):
    for index in range(2):
        ingest_upload(user, upload(samples.image_bytes(samples.solid((index, 0, 0)), "PNG")))
    ingest_upload(other_user, upload(samples.image_bytes(samples.solid(), "BMP")))
    with django_capture_on_commit_callbacks(execute=True):
        Asset.objects.filter(owner=user).delete()
    assert len(stored_files(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        other_user.delete()
    assert stored_files(media_root) == []


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_delete_keeps_the_files(user, media_root):
    asset = ingest_upload(user, upload(samples.image_bytes(samples.solid(), "PNG"))).asset
    asset_pk = asset.pk

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        asset.delete()
        raise Abort
    assert Asset.objects.filter(pk=asset_pk).exists()
    assert len(stored_files(media_root)) == 2


def test_load_image_is_upright_rgb(user):
    asset = ingest_upload(user, upload(samples.exif_rotated_jpeg())).asset
    assert (asset.width, asset.height) == (40, 60)
    pixels = load_image(asset)
    assert pixels.shape == (60, 40, 3) and pixels.dtype == np.uint8
    assert pixels[5, 20, 0] > 200 and pixels[55, 20, 2] > 200  # red on top, blue below


def test_load_image_of_a_real_rgba_photo(user, faces_dir):
    data = (faces_dir / "probes" / "32bit.png").read_bytes()
    asset = ingest_upload(user, upload(data, "32bit.png")).asset
    pixels = load_image(asset)
    assert pixels.shape == (asset.height, asset.width, 3) and pixels.dtype == np.uint8


def test_synthetic_video_is_ingested_and_sampled(user):
    asset = ingest_upload(user, upload(samples.synthetic_video(frames=10, fps=5), "clip.mp4")).asset
    assert (asset.kind, asset.content_type, asset.frame_count) == ("video", "video/mp4", 10)
    assert asset.file.name.endswith(".mp4") and asset.thumbnail

    frames = list(iter_video_frames(asset, every_seconds=1.0))
    assert [(frame.index, frame.timestamp) for frame in frames] == [(0, 0.0), (5, 1.0)]
    assert frames[1].image.shape == (48, 64, 3) and frames[1].image.dtype == np.uint8
    assert abs(int(frames[1].image.mean()) - 100) < 12  # frame 5 is gray level 100

    every_frame = list(iter_video_frames(asset, every_seconds=0.01, max_frames=4))
    assert [frame.index for frame in every_frame] == [0, 1, 2, 3]
    assert load_image(asset).shape == (48, 64, 3)


def test_sideways_video_frames_are_upright(user):
    asset = ingest_upload(user, upload(samples.sideways_phone_video(), "portrait.mp4")).asset
    assert (asset.width, asset.height) == (48, 64)
    frame = next(iter_video_frames(asset))
    assert frame.image.shape == (64, 48, 3)
    assert frame.image[5, 24, 0] > 200 and frame.image[58, 24, 2] > 200
    assert load_image(asset).shape == (64, 48, 3)


def test_real_videos_are_sampled_once_a_second(user, faces_dir):
    for name, size, fps, frames, seconds in [
        ("short_hamilton_clip.mp4", (640, 360), 29.97, 275, 9),
        ("facenet_video.mp4", (1920, 1080), 25, 105, 4),
    ]:
        data = (faces_dir / "videos" / name).read_bytes()
        asset = ingest_upload(user, upload(data, name)).asset
        assert (asset.width, asset.height, asset.frame_count) == (*size, frames)
        assert asset.fps == pytest.approx(fps)
        assert asset.duration_seconds == pytest.approx(frames / fps, abs=0.1)
        sampled = list(iter_video_frames(asset))
        assert len(sampled) == seconds + 1
        assert [round(frame.timestamp) for frame in sampled] == list(range(seconds + 1))
        assert all(frame.image.shape == (size[1], size[0], 3) for frame in sampled)


def test_sampling_a_video_twice_gives_the_same_frames(user):
    """The pipeline decodes a video twice (finding faces, then aligning them): the second pass
    must meet exactly the frames of the first."""
    data = samples.counting_video(frames=300, fps=10, keyframe_every=20)
    asset = ingest_upload(user, upload(data, "long.mp4")).asset

    first, second = list(iter_video_frames(asset, every_seconds=1.3)), list(iter_video_frames(asset, every_seconds=1.3))

    assert [frame.index for frame in first] == [round(13 * i) for i in range(24)]
    assert [(f.index, f.timestamp) for f in first] == [(f.index, f.timestamp) for f in second]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, second))


def test_real_videos_sample_the_same_frames_twice(user, faces_dir):
    for name in ("short_hamilton_clip.mp4", "facenet_video.mp4"):
        asset = ingest_upload(user, upload((faces_dir / "videos" / name).read_bytes(), name)).asset
        first = list(iter_video_frames(asset, every_seconds=0.5))
        again = list(iter_video_frames(asset, every_seconds=0.5))
        assert [f.index for f in first] == [f.index for f in again], name
        assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again)), name


def test_audio_only_upload_has_no_frames(user):
    with pytest.raises(RejectedUpload) as caught:
        ingest_upload(user, upload(samples.audio_only_mp4(), "song.mp4"))
    assert (caught.value.code, caught.value.status) == ("no_frames", 400)


def test_decode_uploaded_image_stores_nothing(user, media_root):
    pixels = decode_uploaded_image(upload(samples.image_bytes(samples.solid(samples.BLUE), "TIFF")))
    assert pixels.shape == (48, 64, 3) and tuple(pixels[0, 0]) == samples.BLUE
    assert stored_files(media_root) == [] and not Asset.objects.exists()

    with pytest.raises(RejectedUpload) as caught:
        decode_uploaded_image(upload(samples.synthetic_video()))
    assert (caught.value.code, caught.value.status) == ("not_an_image", 415)
    with pytest.raises(RejectedUpload) as caught:
        decode_uploaded_image(io.BytesIO(b""))
    assert caught.value.code == "empty"


def test_admin_lists_assets_with_a_thumbnail(client, staff_user, user):
    asset = ingest_upload(user, upload(samples.image_bytes(samples.solid(), "PNG"), "beach.png")).asset
    client.force_login(staff_user)
    listing = client.get("/admin/media/asset/", {"q": "alice@"})
    assert listing.status_code == 200
    assert b"beach.png" in listing.content and asset.thumbnail.url.encode() in listing.content
    assert client.get(f"/admin/media/asset/{asset.pk}/change/").status_code == 200


def test_services_need_no_local_paths(user, settings, media_root, django_capture_on_commit_callbacks):
    """With a storage that keeps nothing on disk (as with S3), everything still works."""
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    image = ingest_upload(user, upload(samples.exif_rotated_jpeg())).asset
    video = ingest_upload(user, upload(samples.synthetic_video(), "clip.mp4")).asset
    storage = image.file.storage
    assert storage.exists(image.file.name) and stored_files(media_root) == []

    assert load_image(image).shape == (60, 40, 3)
    assert len(list(iter_video_frames(video))) == 2
    with django_capture_on_commit_callbacks(execute=True):
        Asset.objects.all().delete()
    assert not any(storage.exists(name) for name in (image.file.name, image.thumbnail.name, video.file.name))


# --- orphaned files --------------------------------------------------------------------------


def age(path: Path, hours: float) -> None:
    past = time.time() - hours * 3600
    os.utime(path, (past, past))


def test_cleanup_deletes_old_files_no_asset_uses_and_nothing_else(user, media_root):
    from django.core.management import call_command

    kept = ingest_upload(user, upload(samples.image_bytes(samples.solid(), "PNG"))).asset
    orphan = media_root / "assets" / str(user.pk) / "ab" / ("ab" * 32 + ".jpg")
    fresh_orphan = media_root / "thumbnails" / str(user.pk) / "cd" / ("cd" * 32 + ".jpg")
    for path in (orphan, fresh_orphan):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
    for path in media_root.rglob("*"):
        if path.is_file() and path != fresh_orphan:
            age(path, 48)

    listed = io.StringIO()
    call_command("cleanup_media", "--dry-run", stdout=listed)
    assert orphan.exists()
    deleted = io.StringIO()
    call_command("cleanup_media", stdout=deleted)

    assert listed.getvalue().splitlines() == [f"would delete {orphan.relative_to(media_root)}",
                                              "1 orphaned file(s) would be deleted."]
    assert deleted.getvalue().splitlines()[-1] == "1 orphaned file(s) deleted."
    assert not orphan.exists()
    assert fresh_orphan.exists()  # maybe an upload in flight
    assert stored_files(media_root) == sorted([kept.file.name, kept.thumbnail.name, str(fresh_orphan.relative_to(media_root))])

