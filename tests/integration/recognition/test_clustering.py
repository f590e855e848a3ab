"""Unknown faces grouped into people without a name: after each job and in full, never two
faces of one picture together, never into a named person, every human decision kept."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from recognition.models import Face, FaceRejection, Subject
from recognition.people import clustering, corrections
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset
from tests.integration.recognition.test_api_people import person_vector

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clustering_settings(settings):
    settings.SIGHTLINE_CLUSTER_DISTANCE = 0.5
    settings.SIGHTLINE_CLUSTER_MIN_FACES = 2
    settings.SIGHTLINE_CLUSTER_MIN_QUALITY = 0.4


class Photos:
    def __init__(self, user):
        self.user, self.seed = user, 0

    def face_of(self, person: int, variation: int = 0, asset=None, **fields) -> Face:
        if asset is None:
            self.seed += 1
            asset = stored_asset(self.user, jpeg_bytes(seed=self.seed), f"p{self.seed}.jpg")
        return make_face(asset, embedding=person_vector(person, variation), **fields)


@pytest.fixture
def photos(user):
    return Photos(user)


def people_of(faces) -> list[int | None]:
    return [Face.objects.get(pk=f.pk).subject_id for f in faces]


def test_a_lone_face_waits_and_a_second_one_forms_a_person(photos, user):
    first = photos.face_of(1)
    assert clustering.cluster_new_faces(user.pk, [first.pk]) == 0
    assert people_of([first]) == [None]

    second = photos.face_of(1, variation=1)
    assert clustering.cluster_new_faces(user.pk, [second.pk]) == 2
    a, b = people_of([first, second])
    assert a == b is not None and Subject.objects.get(pk=a).name == ""

    third = photos.face_of(1, variation=2)
    clustering.cluster_new_faces(user.pk, [third.pk])
    assert people_of([third]) == [a]  # joins, no new person
    assert Subject.objects.filter(owner=user).count() == 1


def test_different_people_are_never_grouped(photos, user):
    faces = [photos.face_of(person, variation) for person in (1, 2, 3) for variation in range(3)]
    clustering.cluster_new_faces(user.pk, [f.pk for f in faces])
    assigned = people_of(faces)
    groups = [set(assigned[i:i + 3]) for i in (0, 3, 6)]
    assert all(len(g) == 1 and None not in g for g in groups)
    assert len(set.union(*groups)) == 3


def test_two_faces_of_one_picture_are_never_one_person(photos, user):
    twins = stored_asset(user, jpeg_bytes(seed=500), "twins.jpg")
    a = photos.face_of(1, 0, asset=twins, box=(0, 0, 30, 30))
    b = photos.face_of(1, 1, asset=twins, box=(50, 0, 80, 30))
    clustering.cluster_new_faces(user.pk, [a.pk, b.pk])
    assert people_of([a, b]) == [None, None]
    c = photos.face_of(1, 2)
    clustering.cluster_new_faces(user.pk, [c.pk])
    pa, pb, pc = people_of([a, b, c])
    assert pc is not None and pa != pb and pc in (pa, pb)


def _track(photos, video, person, variation, frames, best):
    """A video track seen at ``frames``, its best face at frame ``best``."""
    from recognition.models import Appearance

    faces = [photos.face_of(person, variation, asset=video, frame_index=frame, quality=0.9 if frame == best else 0.5)
             for frame in frames]
    best_face = next(f for f in faces if f.frame_index == best)
    appearance = Appearance.objects.create(
        asset=video, owner=video.owner, start_seconds=min(frames) / 2, end_seconds=max(frames) / 2,
        best_face=best_face, embedding=best_face.embedding, face_count=len(faces))
    Face.objects.filter(pk__in=[f.pk for f in faces]).update(appearance=appearance)
    return best_face


@pytest.mark.parametrize("full_recluster", [False, True])
def test_two_tracks_seen_in_one_frame_are_never_one_person(photos, user, full_recluster):
    """Look-alikes on stage together: their best faces come from different frames, but the
    tracks share frames 0-2, so they are two people; a third track later on may join either."""
    video = stored_asset(user, jpeg_bytes(seed=600), "stage.jpg")
    left = _track(photos, video, 1, 0, frames=[0, 1, 2], best=0)
    right = _track(photos, video, 1, 1, frames=[0, 1, 2, 3], best=3)
    if full_recluster:
        clustering.recluster(user.pk, full=True)
    else:
        clustering.cluster_new_faces(user.pk, [left.pk, right.pk])
    assert people_of([left, right]) == [None, None]
    later = _track(photos, video, 1, 2, frames=[8, 9], best=9)
    if full_recluster:
        clustering.recluster(user.pk, full=True)
    else:
        clustering.cluster_new_faces(user.pk, [later.pk])
    pl, pr, pn = people_of([left, right, later])
    assert pn is not None and pl != pr and pn in (pl, pr)


def test_unclear_faces_never_seed_a_person(photos, user):
    faces = [photos.face_of(1, v, quality=0.2) for v in range(3)]
    clustering.cluster_new_faces(user.pk, [f.pk for f in faces])
    assert people_of(faces) == [None, None, None]


def test_clustering_never_adds_to_named_people_or_moves_human_decisions(photos, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    named = photos.face_of(1, 0, subject=ada, decided_by="human", is_example=True)
    unknown_by_a_human = photos.face_of(1, 1, decided_by="human")
    newcomer = photos.face_of(1, 2)
    clustering.cluster_new_faces(user.pk, [newcomer.pk, unknown_by_a_human.pk])
    assert people_of([named, unknown_by_a_human, newcomer]) == [ada.pk, None, None]


def test_a_rejected_person_is_never_joined(photos, user):
    cluster = Subject.objects.create(owner=user, name="")
    members = [photos.face_of(1, v, subject=cluster) for v in range(2)]
    face = photos.face_of(1, 5)
    FaceRejection.objects.create(face=face, subject=cluster)
    clustering.cluster_new_faces(user.pk, [face.pk])
    assert people_of([face]) == [None]
    assert people_of(members) == [cluster.pk, cluster.pk]


def test_full_recluster_is_idempotent_and_keeps_ids(photos, user):
    faces = [photos.face_of(person, v) for person in (1, 2) for v in range(4)]
    loner = photos.face_of(3)
    first = clustering.recluster(user.pk, full=True)
    after_first = people_of(faces + [loner])
    second = clustering.recluster(user.pk, full=True)

    assert (first.people, first.created, first.clustered) == (2, 2, 8)
    assert people_of(faces + [loner]) == after_first and after_first[-1] is None
    assert (second.changed, second.created, second.removed) == (0, 0, 0)
    assert len(set(after_first[:4])) == 1 and len(set(after_first[4:8])) == 1 and after_first[0] != after_first[4]


def test_full_recluster_honours_every_human_decision(photos, user):
    ada = Subject.objects.create(owner=user, name="Ada")
    named = [photos.face_of(1, v, subject=ada, decided_by="human") for v in range(2)]
    pinned = Subject.objects.create(owner=user, name="")
    human_pinned = photos.face_of(2, 0, subject=pinned, decided_by="human")
    auto = [photos.face_of(2, v) for v in (1, 2)]
    dismissed = photos.face_of(2, 3, dismissed=True)
    rejecting = photos.face_of(2, 4)
    FaceRejection.objects.create(face=rejecting, subject=pinned)
    hidden_cluster_faces = [photos.face_of(4, v) for v in range(2)]

    clustering.recluster(user.pk, full=True)
    corrections.set_hidden(Subject.objects.get(pk=people_of(hidden_cluster_faces)[0]), True)
    clustering.recluster(user.pk, full=True)

    assert people_of(named) == [ada.pk, ada.pk]
    assert people_of([human_pinned, *auto]) == [pinned.pk] * 3
    assert people_of([dismissed]) == [None]
    assert people_of([rejecting])[0] != pinned.pk
    hidden_person = Subject.objects.get(pk=people_of(hidden_cluster_faces)[0])
    assert hidden_person.hidden  # a rebuild kept the person, so the user's hiding stands


def test_recluster_command_reports_per_owner(photos, user, capsys):
    for v in range(3):
        photos.face_of(1, v)
    call_command("recluster", "--owner", user.email, "--full")
    out = capsys.readouterr().out
    assert f"{user.email}: 3 face(s) considered, 3 in 1 unnamed people (1 new, 0 removed)" in out


def test_nightly_job_queues_one_recluster_per_owner(photos, user, other_user):
    import django_rq

    from recognition import jobs

    photos.face_of(1)
    Photos(other_user).face_of(2)
    queue = django_rq.get_queue("default")
    queue.empty()
    assert jobs.recluster_everyone() == 2
    assert sorted(job.args[0] for job in queue.get_jobs()) == sorted([user.pk, other_user.pk])
    queue.empty()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("run", "last_read"), [("after a job", "_rejections"), ("recluster", "face_neighbours")])
def test_a_face_named_while_clustering_runs_keeps_its_name(photos, user, monkeypatch, run, last_read, settings,
                                                           tmp_path):
    """Clustering reads the waiting faces, then a person names one of them (and commits)
    before clustering writes: clustering moves only faces still automatic."""
    import threading

    from django.db import connection

    from recognition import search

    settings.MEDIA_ROOT = tmp_path
    waiting = photos.face_of(1)
    new = photos.face_of(1, variation=1)
    ada = Subject.objects.create(owner=user, name="Ada")
    where = clustering if last_read == "_rejections" else search
    original = getattr(where, last_read)

    def name_it():
        try:
            corrections.name_face(Face.objects.get(pk=waiting.pk), ada)
        finally:
            connection.close()

    def read_then_a_person_decides(*args, **kwargs):
        found = original(*args, **kwargs)
        naming = threading.Thread(target=name_it)
        naming.start()
        naming.join(timeout=30)
        return found

    monkeypatch.setattr(where, last_read, read_then_a_person_decides)
    if run == "recluster":
        clustering.recluster(user.pk)
    else:
        clustering.cluster_new_faces(user.pk, [new.pk])

    named = Face.objects.get(pk=waiting.pk)
    assert (named.subject_id, named.decided_by) == (ada.pk, "human")
