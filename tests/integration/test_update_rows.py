"""config.db.update_rows: bulk_update's result, with shared values written once."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.db import update_rows
from recognition.models import Face, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset, unit_vector

pytestmark = pytest.mark.django_db


@pytest.fixture
def faces(user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    asset = stored_asset(user, jpeg_bytes())
    return [make_face(asset, embedding=unit_vector(n), with_crop=False, box=(n, n, n + 30, n + 30)) for n in range(4)]


def test_shared_values_are_one_assignment_and_the_others_one_branch_per_row(faces, user):
    subject = Subject.objects.create(owner=user, name="Ada")
    for n, face in enumerate(faces):
        face.subject = subject  # shared, through the foreign key
        face.quality = 0.1 * (n + 1)  # one per row
    with CaptureQueriesContext(connection) as queries:
        assert update_rows(faces, ["subject", "quality"]) == 4
    (update,) = [q["sql"] for q in queries.captured_queries]
    assert update.count("CASE") == 1 and update.count("WHEN") == 4
    assert sorted(Face.objects.filter(pk__in=[f.pk for f in faces]).values_list("subject_id", "quality")) == [
        (subject.pk, pytest.approx(0.1 * (n + 1))) for n in range(4)
    ]


def test_rows_outside_the_list_are_left_alone_and_an_empty_list_writes_nothing(faces):
    for face in faces[:2]:
        face.dismissed = True
    update_rows(faces[:2], ["dismissed"])
    assert [f.dismissed for f in Face.objects.order_by("pk")] == [True, True, False, False]
    with CaptureQueriesContext(connection) as queries:
        assert update_rows([], ["dismissed"]) == 0
    assert queries.captured_queries == []


def test_arrays_are_written_per_row_and_equal_json_once(faces):
    """Embeddings compare element by element (never 'shared'); equal JSON lists are shared."""
    for n, face in enumerate(faces):
        face.embedding = unit_vector(100 + n)
        face.landmarks = [[1.5, 2.5]] * 5
    with CaptureQueriesContext(connection) as queries:
        update_rows(faces, ["embedding", "landmarks"])
    (update,) = [q["sql"] for q in queries.captured_queries]
    assert update.count("CASE") == 1  # the embeddings'
    for n, face in enumerate(Face.objects.order_by("pk")):
        assert np.allclose(face.embedding, unit_vector(100 + n))
        assert face.landmarks == [[1.5, 2.5]] * 5


def test_batches(faces):
    for n, face in enumerate(faces):
        face.score = 0.5 + n / 10
    with CaptureQueriesContext(connection) as queries:
        assert update_rows(faces, ["score"], batch_size=3) == 4
    assert len(queries.captured_queries) == 2
    assert [round(f.score, 2) for f in Face.objects.order_by("pk")] == [0.5, 0.6, 0.7, 0.8]
