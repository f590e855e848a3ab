"""Identification scans an owner's examples exactly while they are few (HNSW filtered by owner
loses recall and time where the owner holds a small share of the index, docs/BENCHMARKS.md), and
searches the HNSW index with the iterative scan past that: either way the owner's own people are
found behind another owner's nearer faces."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from recognition import search
from recognition.models import Face, Subject
from tests.integration.recognition.api_helpers import jpeg_bytes, make_face, stored_asset

pytestmark = pytest.mark.django_db

STRANGERS = 150  # more than ef_search (100): an index search without the iterative scan comes back short


@pytest.fixture
def ada_behind_strangers(user, other_user):
    """The user's Ada (3 examples, about 0.3 from the query) and another owner's person with
    150 examples nearer to the query than any of hers."""
    rng = np.random.default_rng(11)
    query = (rng.normal(size=128) * 0.1).astype(np.float32)
    ada = Subject.objects.create(owner=user, name="Ada")
    for i in range(3):
        offset = rng.normal(size=128)
        make_face(stored_asset(user, jpeg_bytes(seed=i), f"ada{i}.jpg"), subject=ada, is_example=True,
                  embedding=(query + offset / np.linalg.norm(offset) * 0.3).astype(np.float32), with_crop=False)
    twin = Subject.objects.create(owner=other_user, name="Twin")
    strangers_photo = stored_asset(other_user, jpeg_bytes(seed=99), "strangers.jpg")
    Face.objects.bulk_create(
        Face(asset=strangers_photo, owner=other_user, box=[0, 0, 1, 1], landmarks=[[0, 0]] * 5, score=1, quality=1,
             model_version="test", subject=twin, is_example=True,
             embedding=(query + rng.normal(size=128) * 0.001).astype(np.float32))
        for _ in range(STRANGERS)
    )
    return query, ada


@pytest.mark.parametrize(("exact_max", "exactly"), [(search.EXACT_SEARCH_MAX, True), (2, False)],
                         ids=["exact", "hnsw"])
def test_the_owners_person_is_found_behind_nearer_strangers(ada_behind_strangers, user, monkeypatch, exact_max,
                                                            exactly):
    monkeypatch.setattr(search, "EXACT_SEARCH_MAX", exact_max)  # 3 examples: more than 2
    query, ada = ada_behind_strangers
    with connection.cursor() as cursor:
        assert search.searched_exactly(cursor, user.pk) is exactly

    with CaptureQueriesContext(connection) as queries:
        [candidates] = search.nearest_subjects(user.pk, query[None, :])

    assert len(queries.captured_queries) == 1  # plan, settings, search and reset: one round trip
    assert [(c.subject_id, c.votes) for c in candidates] == [(ada.pk, 3)]
    assert candidates[0].distance == pytest.approx(0.3, abs=1e-3)



@pytest.mark.parametrize("exact_max", [search.EXACT_SEARCH_MAX, 2], ids=["exact", "hnsw"])
def test_an_exact_identification_leaves_index_scans_on_for_the_rest_of_the_transaction(
        ada_behind_strangers, user, monkeypatch, exact_max):
    """A pipeline's save identifies and then clusters in one transaction: SET LOCAL outlives
    the search, and clustering's neighbour search without index scans reads every one of the
    owner's faces instead of the HNSW index."""
    monkeypatch.setattr(search, "EXACT_SEARCH_MAX", exact_max)
    query, ada = ada_behind_strangers
    with transaction.atomic(), connection.cursor() as cursor:
        search.nearest_subjects(user.pk, query[None, :])
        cursor.execute("SHOW enable_indexscan")
        assert cursor.fetchone()[0] == "on"
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would be read whole
        cursor.execute("EXPLAIN SELECT id FROM recognition_face ORDER BY embedding <-> %s::vector LIMIT 5",
                       [search.vector_literal(query)])
        assert "face_embedding_hnsw" in " ".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize(("exact_max", "index_scans"), [(search.EXACT_SEARCH_MAX, "off"), (2, "on")],
                         ids=["exact", "hnsw"])
def test_the_plan_chosen_in_the_same_round_trip_holds_for_the_search(ada_behind_strangers, user, monkeypatch,
                                                                     exact_max, index_scans):
    """The count of examples switches index scans off (HNSW only answers index scans) in the
    statement before the search, which sees the setting; the reset after it puts them back."""
    monkeypatch.setattr(search, "EXACT_SEARCH_MAX", exact_max)
    params = {"owner": user.pk, "exact_max": exact_max}
    with transaction.atomic(), connection.cursor() as cursor:
        seen = search._rows_in_one_trip(cursor, search._IDENTIFY_SETTINGS, "SELECT current_setting('enable_indexscan')",
                                        params, after=search._INDEX_SCANS_BACK)
        cursor.execute("SHOW enable_indexscan")
        after = cursor.fetchone()[0]
    assert (seen, after) == ([(index_scans,)], "on")
