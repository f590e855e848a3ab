"""Operator commands: import a folder, enrol and recognise with the engine in-process, requeue."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from io import StringIO

import django_rq
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from media.models import Asset
from recognition.models import Face, Job, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, stored_asset

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_media_queues_new_files_and_reports_duplicates_and_rejections(tmp_path, user, faces_dir):
    probes = faces_dir / "probes"
    shutil.copy(probes / "obama1.jpg", tmp_path / "a.jpg")
    shutil.copy(probes / "two_people.jpg", tmp_path / "b.jpg")
    shutil.copy(probes / "obama1.jpg", tmp_path / "copy-of-a.jpg")
    (tmp_path / "notes.jpg").write_text("not a photo\n" * 10)
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.png").write_bytes((probes / "32bit.png").read_bytes())

    out, err = run("import_media", str(tmp_path), "--owner", "ALICE@example.com")

    assert "4 file(s): 2 queued, 1 duplicate(s), 1 rejected." in out
    assert "rejected notes.jpg: This file type is not supported" in out
    assert "by reason: unsupported_type 1" in out
    assert "4/4" in err  # the progress counter
    assert Asset.objects.filter(owner=user).count() == 2
    assert Job.objects.filter(asset__owner=user, stage="queued").count() == 2

    out, _ = run("import_media", str(tmp_path), "--owner", user.email, "--recursive")
    assert "5 file(s): 1 queued, 3 duplicate(s), 1 rejected." in out


def test_import_media_needs_a_known_owner_and_a_folder(tmp_path, user):
    with pytest.raises(CommandError, match="No user with the email"):
        run("import_media", str(tmp_path), "--owner", "nobody@example.com")
    with pytest.raises(CommandError, match="is not a folder"):
        run("import_media", str(tmp_path / "missing"), "--owner", user.email)


def test_enroll_then_recognize_json_with_the_engine_in_process(user, faces_dir):
    gallery, probes = faces_dir / "gallery", faces_dir / "probes"

    out, _ = run("enroll", "Biden", str(gallery / "biden" / "biden.jpg"), "--owner", user.email)
    with pytest.raises(CommandError, match="1 photo"):
        run("enroll", "biden", str(probes / "multiface.jpg"), "--owner", user.email)
    recognized, _ = run("recognize", str(probes / "two_people.jpg"), "--owner", user.email, "--json")
    table, _ = run("recognize", str(probes / "two_people.jpg"), "--owner", user.email)

    biden = Subject.objects.get(owner=user, name="Biden")
    assert "Created subject Biden" in out and "1 of 1 photo(s) enrolled for Biden." in out
    assert Face.objects.filter(subject=biden, is_example=True).count() == 1
    assert Asset.objects.filter(owner=user).count() == 1  # the refused group photo was not kept
    result = json.loads(recognized)
    names = [face["subject"]["name"] if face["subject"] else None for face in result["faces"]]
    assert sorted(names, key=str) == ["Biden", None]
    assert result["threshold"] == 0.6
    assert "2 face(s), threshold 0.6" in table and "Biden" in table and "unknown" in table


@pytest.mark.django_db(transaction=True)  # django-rq enqueues on commit: committed data, real enqueue
def test_requeue_queues_a_job_whose_rq_job_vanished(user):
    asset = stored_asset(user, jpeg_bytes())
    lost = Job.objects.create(asset=asset, stage="detecting", rq_job_id="vanished-rq-job")
    Job.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - timedelta(minutes=10))

    out, _ = run("requeue", "--grace", "60")
    nothing, _ = run("requeue", "--grace", "60", "--verbosity", "2")

    lost.refresh_from_db()
    assert out.strip() == f"Re-queued 1 job(s): {lost.pk}."
    assert lost.rq_job_id != "vanished-rq-job"
    assert lost.rq_job_id in django_rq.get_queue("inference").job_ids
    assert nothing.splitlines() == [  # waiting in the queue now: alive, and the operator is told why
        "Left 1 unfinished job(s) alone: a worker still has them, or they changed within the grace and may be "
        "about to be queued:",
        f"  job {lost.pk}: waiting in the queue (rq job {lost.rq_job_id})",
        "No stuck jobs.",
    ]


def test_reindex_re_runs_what_an_older_model_found_and_keeps_names(user):
    from recognition.models import Subject
    from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset

    old = stored_asset(user, jpeg_bytes(seed=1), "old.jpg")
    ada = Subject.objects.create(owner=user, name="Ada")
    make_face(old, subject=ada, decided_by="human", model_version="model-1")
    old.jobs.update(model_version="model-1")
    current = stored_asset(user, jpeg_bytes(seed=2), "current.jpg")
    current.jobs.update(model_version="model-2")

    out = StringIO()
    call_command("reindex", "--owner", user.email, "--model-version", "model-2", stdout=out)

    assert "Queued 1 file(s) for processing again." in out.getvalue()
    assert old.jobs.order_by("-created_at", "-id").first().stage == "queued"
    assert current.jobs.count() == 1  # what the current model analysed is left alone
