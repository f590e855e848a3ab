"""Human decisions survive re-runs: the real pipeline re-detects the faces of the shared photos
and every name, "not this person", "not a face" and erasure carries over."""

from __future__ import annotations

import pytest

from recognition import services
from recognition.models import Face, Job, Stage
from tests.integration.recognition.api_helpers import upload_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def uploaded(auth_client, path, run_jobs) -> dict:
    body = auth_client.post("/api/v1/assets/", {"file": upload_of(path)}, format="multipart").json()
    run_jobs()
    return body["asset"]


def faces_of(auth_client, asset_id, **params) -> list[dict]:
    return auth_client.get("/api/v1/faces/", {"asset": asset_id, **params}).json()["results"]


def rerun(asset_id, run_jobs) -> None:
    job = services.rerun_asset(Job.objects.get(asset_id=asset_id, stage=Stage.COMPLETED).asset)
    run_jobs()
    job.refresh_from_db()
    assert job.stage == Stage.COMPLETED, job.error


def person(auth_client, name) -> dict:
    return auth_client.post("/api/v1/subjects/", {"name": name}, format="json").json()


def test_a_name_given_by_hand_survives_a_rerun(auth_client, faces_dir, run_jobs):
    asset = uploaded(auth_client, faces_dir / "probes" / "two_people.jpg", run_jobs)
    obama = person(auth_client, "Obama")
    face = min(faces_of(auth_client, asset["id"]), key=lambda f: f["box"][0])  # Obama stands on the left
    auth_client.patch(f"/api/v1/faces/{face['id']}/", {"subject": obama["id"]}, format="json")

    rerun(asset["id"], run_jobs)

    after = {f["id"]: f for f in faces_of(auth_client, asset["id"])}
    assert after[face["id"]]["subject"]["id"] == obama["id"]
    assert after[face["id"]]["decided_by"] == "human"
    assert auth_client.get(f"/api/v1/subjects/{obama['id']}/").json()["face_count"] == 1
    assert len(after) == 2


def test_not_this_person_survives_a_rerun(auth_client, faces_dir, run_jobs):
    gallery = uploaded(auth_client, faces_dir / "gallery" / "obama" / "obama.jpg", run_jobs)
    obama = person(auth_client, "Obama")
    portrait = max(faces_of(auth_client, gallery["id"]), key=lambda f: f["quality"])
    auth_client.patch(f"/api/v1/faces/{portrait['id']}/", {"subject": obama["id"]}, format="json")
    probe = uploaded(auth_client, faces_dir / "probes" / "obama1.jpg", run_jobs)
    recognised = [f for f in faces_of(auth_client, probe["id"]) if f["subject"]]
    assert [f["subject"]["id"] for f in recognised] == [obama["id"]]  # the named face taught it

    auth_client.post(f"/api/v1/faces/{recognised[0]['id']}/reject/", {}, format="json")
    rerun(probe["id"], run_jobs)

    face = auth_client.get(f"/api/v1/faces/{recognised[0]['id']}/").json()
    assert face["subject"] is None or face["subject"]["id"] != obama["id"]
    assert face["rejected_subjects"] == [obama["id"]]


def test_not_a_face_survives_a_rerun(auth_client, faces_dir, run_jobs):
    asset = uploaded(auth_client, faces_dir / "gallery" / "obama" / "obama.jpg", run_jobs)
    background = min(faces_of(auth_client, asset["id"]), key=lambda f: f["quality"])
    assert background["quality"] < 0.4  # the detector's false positive behind him
    auth_client.post(f"/api/v1/faces/{background['id']}/dismiss/")

    rerun(asset["id"], run_jobs)

    assert background["id"] not in [f["id"] for f in faces_of(auth_client, asset["id"])]
    dismissed = faces_of(auth_client, asset["id"], dismissed="true")
    assert [f["id"] for f in dismissed] == [background["id"]]
    assert Face.objects.filter(asset_id=asset["id"]).count() == 2  # no new twin of it either


def test_an_erased_person_is_not_found_again_by_a_rerun(auth_client, faces_dir, run_jobs):
    asset = uploaded(auth_client, faces_dir / "probes" / "two_people.jpg", run_jobs)
    biden = person(auth_client, "Biden")
    face = max(faces_of(auth_client, asset["id"]), key=lambda f: f["box"][0])  # Biden stands on the right
    auth_client.patch(f"/api/v1/faces/{face['id']}/", {"subject": biden["id"]}, format="json")
    auth_client.post(f"/api/v1/subjects/{biden['id']}/erase/", {"confirm": True}, format="json")

    rerun(asset["id"], run_jobs)

    boxes = [f["box"] for f in faces_of(auth_client, asset["id"])]
    assert len(boxes) == 1 and boxes[0] != face["box"]


def test_a_name_given_while_a_rerun_is_being_saved_stands(auth_client, faces_dir, run_jobs, monkeypatch):
    """The re-run has read the photo's faces and is about to write them back when the person
    names one: the name is kept (it waits for the run's write and then applies), never
    overwritten with what the run read before."""
    import threading

    from django.db import connection

    from recognition import face_results

    asset = uploaded(auth_client, faces_dir / "probes" / "two_people.jpg", run_jobs)
    obama = person(auth_client, "Obama")
    face = min(faces_of(auth_client, asset["id"]), key=lambda f: f["box"][0])
    assert face["decided_by"] == "auto"
    answers = []

    def name_it():
        try:
            answers.append(auth_client.patch(f"/api/v1/faces/{face['id']}/", {"subject": obama["id"]},
                                             format="json").status_code)
        finally:
            connection.close()

    naming = threading.Thread(target=name_it)
    original = face_results.pair_by_box

    def pair_while_a_person_decides(stored, found):
        paired = original(stored, found)
        if not naming.is_alive() and not answers:
            naming.start()
            naming.join(timeout=2)  # with the faces locked it waits for this run's commit
        return paired

    monkeypatch.setattr(face_results, "pair_by_box", pair_while_a_person_decides)
    rerun(asset["id"], run_jobs)
    naming.join(timeout=30)

    assert answers == [200]
    after = auth_client.get(f"/api/v1/faces/{face['id']}/").json()
    assert after["decided_by"] == "human"
    assert after["subject"]["id"] == obama["id"]
