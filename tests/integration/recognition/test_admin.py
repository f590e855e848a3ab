"""The recognition admin: every page loads for staff, the re-run action starts a new job."""

from __future__ import annotations

from datetime import timedelta

import django_rq
import pytest
from django.urls import reverse
from django.utils import timezone

from recognition.models import Job, Subject
from tests.integration.recognition.api_helpers import enrolled_photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def rows(user):
    return enrolled_photo(user, "holiday.jpg", "Ada")


def test_changelists_and_change_forms_load(staff_client, rows):
    pages = {
        "job": rows["job"], "subject": rows["subject"], "face": rows["face"],
    }
    for model, obj in pages.items():
        assert staff_client.get(reverse(f"admin:recognition_{model}_changelist")).status_code == 200, model
        assert staff_client.get(reverse(f"admin:recognition_{model}_change", args=[obj.pk])).status_code == 200, model
    assets = staff_client.get(reverse("admin:media_asset_changelist"))
    asset_page = staff_client.get(reverse("admin:media_asset_change", args=[rows["asset"].pk]))
    assert assets.status_code == asset_page.status_code == 200
    assert "completed" in assets.content.decode()  # the latest job's state
    assert f"#{rows['job'].pk}" in asset_page.content.decode()  # the jobs inline
    crop_url = reverse("face-crop", args=[rows["face"].pk])
    assert crop_url in staff_client.get(reverse("admin:recognition_subject_change",
                                                args=[rows["subject"].pk])).content.decode()
    assert staff_client.get(crop_url).status_code == 200  # the inline's image loads for staff


def test_job_filters(staff_client, rows):
    changelist = reverse("admin:recognition_job_changelist")
    assert staff_client.get(changelist, {"failed": "yes"}).status_code == 200
    assert staff_client.get(changelist, {"stage__exact": "completed"}).status_code == 200


def test_rerun_action_starts_a_new_job(staff_client, rows):
    response = staff_client.post(
        reverse("admin:recognition_job_changelist"),
        {"action": "rerun_jobs", "_selected_action": [rows["job"].pk]},
        follow=True,
    )

    assert response.status_code == 200
    new = Job.objects.filter(asset=rows["asset"]).exclude(pk=rows["job"].pk).get()
    assert new.stage == "queued"
    assert f"Started 1 new job(s): {new.pk}." in response.content.decode()


@pytest.mark.django_db(transaction=True)  # the re-queued job is really enqueued (on commit)
def test_recover_action_requeues_a_lost_job_and_counts_the_ones_left(staff_client, rows):
    lost = rows["job"]
    Job.objects.filter(pk=lost.pk).update(stage="detecting", rq_job_id="vanished-rq-job",
                                          updated_at=timezone.now() - timedelta(minutes=10))
    fresh = Job.objects.create(asset=rows["asset"], stage="queued")  # committed, not queued yet

    response = staff_client.post(reverse("admin:recognition_job_changelist"),
                                 {"action": "recover_stuck_jobs", "_selected_action": [lost.pk]}, follow=True)

    assert "Re-queued 1 job(s), failed 0 that kept stopping; left 1 unfinished job(s) alone" \
        in response.content.decode()
    lost.refresh_from_db()
    assert lost.stage == "queued" and lost.rq_job_id in django_rq.get_queue("inference").job_ids
    assert Job.objects.get(pk=fresh.pk).rq_job_id == ""


def test_face_admin_changes_the_subject_only_within_the_owner(staff_client, rows, other_user):
    foreign = Subject.objects.create(owner=other_user, name="Bob's friend")
    url = reverse("admin:recognition_face_change", args=[rows["face"].pk])

    refused = staff_client.post(url, {"subject": foreign.pk})
    cleared = staff_client.post(url, {"subject": ""})

    assert "belongs to another user" in refused.content.decode()
    assert cleared.status_code == 302
    rows["face"].refresh_from_db()
    assert (rows["face"].subject_id, rows["face"].is_example) == (None, False)


def test_people_actions_merge_erase_and_dismiss(staff_client, rows, user):
    from recognition.models import ErasedFace, Face
    from tests.integration.recognition.api_helpers import make_face

    ada = rows["subject"]
    cluster = Subject.objects.create(owner=user, name="")
    make_face(rows["asset"], subject=cluster, box=(60, 8, 90, 44))
    changelist = reverse("admin:recognition_subject_changelist")

    merged = staff_client.post(changelist, {"action": "merge_into_first", "_selected_action": [ada.pk, cluster.pk]},
                               follow=True)
    assert f"Merged Unnamed person {cluster.pk} into Ada: 1 face(s) moved." in merged.content.decode()
    assert Face.objects.filter(subject=ada).count() == 2

    confirm = staff_client.post(changelist, {"action": "erase_people", "_selected_action": [ada.pk]})
    assert "2 faces (with their embeddings) in 1 photo or video" in confirm.content.decode()
    assert Subject.objects.filter(pk=ada.pk).exists()  # nothing happens before the confirmation
    staff_client.post(changelist, {"action": "erase_people", "_selected_action": [ada.pk], "confirm": "yes"})
    assert not Subject.objects.filter(pk=ada.pk).exists() and ErasedFace.objects.count() == 2

    face = make_face(rows["asset"], box=(100, 8, 130, 44))
    staff_client.post(reverse("admin:recognition_face_changelist"),
                      {"action": "dismiss_faces", "_selected_action": [face.pk]})
    face.refresh_from_db()
    assert (face.dismissed, face.decided_by) == (True, "human")


def test_naming_a_cluster_in_the_admin_confirms_its_faces(staff_client, rows, user):
    from tests.integration.recognition.api_helpers import make_face

    cluster = Subject.objects.create(owner=user, name="")
    face = make_face(rows["asset"], subject=cluster, box=(60, 8, 90, 44))
    staff_client.post(reverse("admin:recognition_subject_change", args=[cluster.pk]),
                      {"name": "Cleo", "notes": "", "faces-TOTAL_FORMS": 0, "faces-INITIAL_FORMS": 0})
    face.refresh_from_db()
    assert (face.subject.name, face.decided_by, face.is_example) == ("Cleo", "human", True)
