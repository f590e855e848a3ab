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
