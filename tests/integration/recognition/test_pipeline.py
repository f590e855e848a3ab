"""The product's main job, end to end: enrol the gallery, upload the probes, run a real worker,
get the manifest's people back."""

import csv
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection

from media.models import Asset
from recognition import services, tagging
from recognition.models import Face, ImageEmbedding, ImageTag, Job, Stage, Subject
from tests.unit.media import samples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def upload(owner, path: Path):
    outcome = services.upload(owner, SimpleUploadedFile(path.name, path.read_bytes()))
    assert outcome.created, path
    return outcome


def enrol_gallery(owner, faces_dir, run_jobs) -> dict[str, Subject]:
    """Upload every gallery photo, then make its (only) face an example of its person."""
    uploads = {}
    for person_dir in sorted((faces_dir / "gallery").iterdir()):
        subject = Subject.objects.create(owner=owner, name=person_dir.name)
        for photo in sorted(person_dir.iterdir()):
            uploads[photo] = (subject, upload(owner, photo))
    run_jobs()
    for photo, (subject, outcome) in uploads.items():
        faces = list(Face.objects.filter(asset=outcome.asset).order_by("-quality"))
        assert faces, f"no face found in gallery photo {photo}"
        biggest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        biggest.subject, biggest.is_example, biggest.match_distance = subject, True, None
        biggest.save()
    return {s.name: s for s in Subject.objects.filter(owner=owner)}


def manifest(faces_dir):
    with open(faces_dir / "MANIFEST.csv") as handle:
        for row in csv.DictReader(handle):
            yield row["path"], [s for s in row["expected_subjects"].split(";") if s], int(row["min_faces"])


def test_manifest_people_are_recognised_with_no_wrong_identity(user, faces_dir, run_jobs, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    subjects = enrol_gallery(user, faces_dir, run_jobs)
    probes = {path: upload(user, faces_dir / path) for path, _, _ in manifest(faces_dir)}
    run_jobs()

    for path, expected, min_faces in manifest(faces_dir):
        job = Job.objects.get(pk=probes[path].job.pk)
        assert job.stage == Stage.COMPLETED, f"{path}: {job.stage} {job.error}"
        assert set(job.timings) == {"uploading", "queued", "detecting", "enhancing", "recognizing"}
        faces = Face.objects.filter(asset=probes[path].asset)
        assert faces.count() >= min_faces, path
        found = {f.subject.name for f in faces if f.subject_id and f.subject.is_named}
        assert found >= set(expected), f"{path}: expected {expected}, recognised {sorted(found)}"
        assert found <= set(expected), f"{path}: wrong identity {sorted(found - set(expected))}"
        if not expected:  # unknown people may be grouped, never named
            assert not faces.filter(subject__isnull=False).exclude(subject__name="").exists()
        tags = list(ImageTag.objects.filter(asset=probes[path].asset).values_list("label", "probability"))
        assert len(tags) <= 5 and all(p >= settings.SIGHTLINE_TAG_MIN_PROBABILITY for _, p in tags), (path, tags)
        assert not {label for label, _ in tags} & (tagging.PRIMATES | tagging.NOT_ON_PEOPLE), (path, tags)
        assert ImageEmbedding.objects.filter(asset=probes[path].asset).exists()
        if probes[path].asset.kind == Asset.Kind.IMAGE:
            # One photo never gives the same person twice, named or not.
            people = [f.subject_id for f in faces if f.subject_id]
            assert len(people) == len(set(people)), path
    assert subjects.keys() >= {"obama", "biden"}
    # Photos with something the tagger is sure of keep it: the rule thins tags, it does not erase them.
    assert ImageTag.objects.filter(asset__owner=user).values("asset").distinct().count() >= len(probes) // 3
    multiface = Face.objects.filter(asset=probes["probes/multiface.jpg"].asset)
    assert multiface.count() == 6 and not multiface.filter(subject__isnull=False).exclude(subject__name="").exists()


def test_rerunning_a_job_replaces_faces_instead_of_duplicating_them(user, faces_dir, run_jobs, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    outcome = upload(user, faces_dir / "probes" / "obama_and_biden.jpg")
    run_jobs()
    first = sorted(Face.objects.filter(asset=outcome.asset).values_list("box", flat=True))
    assert len(first) >= 3

    new_job = services.rerun_asset(Job.objects.get(pk=outcome.job.pk).asset)
    run_jobs()
    new_job.refresh_from_db()
    assert new_job.stage == Stage.COMPLETED
    assert sorted(Face.objects.filter(asset=outcome.asset).values_list("box", flat=True)) == first
    assert Face.objects.filter(asset=outcome.asset, job=new_job).count() == len(first)


def test_a_stored_file_that_turns_out_undecodable_fails_the_job_and_the_worker_goes_on(
    user, faces_dir, run_jobs, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    broken = upload(user, faces_dir / "probes" / "obama_small.jpg")
    good = upload(user, faces_dir / "probes" / "obama1.jpg")
    stored = Path(broken.asset.file.path)
    stored.write_bytes(stored.read_bytes()[:200])  # damaged on disk after upload
    run_jobs()
    broken_job = Job.objects.get(pk=broken.job.pk)
    assert broken_job.stage == Stage.FAILED
    assert broken_job.error and broken_job.error_code
    assert Job.objects.get(pk=good.job.pk).stage == Stage.COMPLETED


def test_an_upload_whose_transaction_fails_leaves_no_files(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    def database_fails_on_the_job_insert(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "recognition_job"'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(database_fails_on_the_job_insert), pytest.raises(OperationalError):
        services.upload(user, SimpleUploadedFile("photo.png", samples.image_bytes(samples.solid(), "PNG")))

    assert not Asset.objects.exists()
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_a_tall_portraits_thumbnail_keeps_its_face_in_view(user, client, faces_dir, run_jobs, settings, tmp_path):
    """Lists crop thumbnails square: a face near the top of a tall picture would be cut off at
    its middle, so a processed photo's thumbnail is pointed at its largest face."""
    import io

    from PIL import Image

    from media import services as media_services

    settings.MEDIA_ROOT = tmp_path
    with Image.open(faces_dir / "probes" / "obama1.jpg") as opened:
        face_photo = opened.convert("RGB")
    tall = Image.new("RGB", (face_photo.width, face_photo.height * 3), (200, 210, 220))
    tall.paste(face_photo, (0, 0))
    buffer = io.BytesIO()
    tall.save(buffer, "JPEG", quality=90)
    portrait = services.upload(user, SimpleUploadedFile("portrait.jpg", buffer.getvalue())).asset
    faceless = services.upload(user, SimpleUploadedFile("wall.png", samples.image_bytes(samples.solid(), "PNG"))).asset
    run_jobs()

    portrait.refresh_from_db()
    face = max(Face.objects.filter(asset=portrait), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    assert portrait.focus_x == pytest.approx((face.box[0] + face.box[2]) / 2 / portrait.width, abs=1e-3)
    assert portrait.focus_y == pytest.approx((face.box[1] + face.box[3]) / 2 / portrait.height, abs=1e-3)
    assert portrait.focus_y < 1 / 3  # the face is in the top third
    faceless.refresh_from_db()
    assert (faceless.focus_x, faceless.focus_y) == (None, None)  # the middle

    client.force_login(user)
    page = client.get("/library/").content.decode()
    expected = f'style="object-position: {round(portrait.focus_x * 100, 1)}% {round(portrait.focus_y * 100, 1)}%"'
    assert expected in page
    assert page.count("object-position") == 1

    media_services.focus_thumbnail_on(portrait, None)  # back to the middle
    portrait.refresh_from_db()
    assert (portrait.focus_x, portrait.focus_y) == (None, None)


def test_the_migration_points_earlier_photos_at_their_largest_face(user, settings, tmp_path):
    import importlib

    from tests.integration.recognition.api_helpers import jpeg_bytes, upload_of

    settings.MEDIA_ROOT = tmp_path
    migration = importlib.import_module("recognition.migrations.0006_focus_thumbnails_on_faces")
    asset = services.upload(user, upload_of(jpeg_bytes(seed=3), "old.jpg")).asset
    Asset.objects.filter(pk=asset.pk).update(width=1000, height=2000)
    for box, dismissed in (([100, 100, 300, 300], False), ([500, 1500, 900, 1900], True), ([600, 200, 700, 300], False)):
        Face.objects.create(asset=asset, owner=user, box=box, landmarks=[[0, 0]] * 5, score=0.99, quality=0.9,
                            embedding=[0.0] * 128, model_version="test", dismissed=dismissed)
    with connection.cursor() as cursor:
        cursor.execute(migration.FOCUS_ON_LARGEST_FACE)
    asset.refresh_from_db()
    assert (asset.focus_x, asset.focus_y) == (0.2, 0.1)  # the largest face not dismissed
