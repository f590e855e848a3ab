"""Videos through the real pipeline: faces tracked into appearances whose identity is the
track's, crops stored by the pipeline, honest stage timings, and names that survive re-runs."""

from __future__ import annotations

import pytest

from recognition import services
from recognition.models import Appearance, Face, Job, Stage
from tests.integration.recognition.test_pipeline import enrol_gallery, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_the_hamilton_clip_gives_appearances_of_exactly_its_two_people(user, faces_dir, run_jobs):
    enrol_gallery(user, faces_dir, run_jobs)
    clip = upload(user, faces_dir / "videos" / "short_hamilton_clip.mp4")
    run_jobs()

    job = Job.objects.get(pk=clip.job.pk)
    assert job.stage == Stage.COMPLETED, job.error
    appearances = list(Appearance.objects.filter(asset=clip.asset).select_related("best_face__subject"))
    faces = Face.objects.filter(asset=clip.asset)
    named = {a.subject.name for a in appearances if a.subject and a.subject.is_named}
    assert named == {"lin_manuel_miranda", "alex_lacamoire"}
    # The audience falls into a few tracks, not a face per frame.
    assert len(appearances) <= faces.count() / 2
    for appearance in appearances:
        members = faces.filter(appearance=appearance)
        assert members.count() == appearance.face_count
        assert {f.subject_id for f in members if not f.dismissed} == {appearance.best_face.subject_id}
        assert appearance.start_seconds <= appearance.end_seconds <= clip.asset.duration_seconds
        assert appearance.frame and appearance.frame.storage.exists(appearance.frame.name)
    assert all(f.crop and f.crop.storage.exists(f.crop.name) for f in faces)


def test_every_stage_times_the_work_it_names(user, faces_dir, run_jobs):
    photo = upload(user, faces_dir / "probes" / "obama1.jpg")
    video = upload(user, faces_dir / "videos" / "facenet_video.mp4")
    run_jobs()
    for outcome in (photo, video):
        job = Job.objects.get(pk=outcome.job.pk)
        assert job.stage == Stage.COMPLETED, job.error
        for stage in ("detecting", "enhancing", "recognizing"):
            assert job.timings[stage]["seconds"] > 0, (outcome.asset.original_name, stage, job.timings)


def test_naming_one_face_names_its_track_and_a_rerun_keeps_it(user, faces_dir, run_jobs):
    from recognition.models import Subject
    from recognition.people import corrections

    clip = upload(user, faces_dir / "videos" / "facenet_video.mp4")
    run_jobs()
    longest = max(Appearance.objects.filter(asset=clip.asset), key=lambda a: a.face_count)
    assert longest.face_count >= 3
    someone = Subject.objects.create(owner=user, name="Someone")
    corrections.name_face(Face.objects.filter(appearance=longest).last(), someone)
    assert set(Face.objects.filter(appearance=longest).values_list("subject_id", flat=True)) == {someone.pk}
    assert Face.objects.filter(appearance=longest, is_example=True).count() == 1  # the track teaches once

    services.rerun_asset(clip.asset)
    run_jobs()

    renamed = [a for a in Appearance.objects.filter(asset=clip.asset) if a.subject == someone]
    assert len(renamed) == 1 and renamed[0].face_count >= longest.face_count - 1
    assert Face.objects.filter(subject=someone).count() >= longest.face_count - 1


def test_faces_found_on_reduced_frames_are_placed_in_the_full_frame(user, faces_dir, run_jobs, settings):
    settings.SIGHTLINE_VIDEO_DETECT_SIDE = 480  # the 640×360 clip is detected at 480×270
    clip = upload(user, faces_dir / "videos" / "short_hamilton_clip.mp4")
    run_jobs()
    job = Job.objects.get(pk=clip.job.pk)
    assert job.stage == Stage.COMPLETED, job.error
    faces = list(Face.objects.filter(asset=clip.asset))
    assert len(faces) >= 10
    width, height = clip.asset.width, clip.asset.height
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces]
    assert all(0 <= x <= width and 0 <= y <= height for x, y in centres)
    assert max(f.box[2] for f in faces) > 480  # full-frame pixels, not the reduced frame's
