"""pgvector queries: identify faces against the faces that teach recognition, verify, similar
faces, the neighbours clustering needs, and similar images.

Identification asks PostgreSQL for the k nearest example faces (enrolled, or named by a person)
of *each* query face in one round trip (a LATERAL join over the array of query vectors), then
votes per subject in Python over those few rows. Distances are dlib's Euclidean distances
(``<->``). Identification computes every distance of an owner with few examples (exact, and
quicker than the index filtered down to them; ``EXACT_SEARCH_MAX``); the other owner-filtered
nearest-neighbour queries run with HNSW's iterative scan, so the owner's rows are found even
when other owners' faces are nearer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction

NEAREST_EXAMPLES = 10  # k nearest example faces fetched per query face
# HNSW with a WHERE clause can come back short; iterative scans keep going until k rows pass,
# up to max_scan_tuples index entries (pgvector's default, 20,000, counts dead ones too: rolled
# back or deleted rows not yet vacuumed, and other owners' rows): past it a search answers
# nothing rather than wrong, so it is set well above any owner's neighbourhood.
_SCAN = "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.max_scan_tuples = 200000"
_SEARCH_SETTINGS = f"{_SCAN}; SET LOCAL hnsw.ef_search = 100"
# HNSW filtered by owner loses where the owner holds a small share of the index: at 1M faces of
# 100 owners (about 10k each) the iterative scan found 0.88 of the 10 nearest examples (0.89 of
# those within the match threshold) at 36 ms p95 of server CPU, where computing all of the
# owner's distances (the btree on owner, then a top-k sort) is exact at 7.5 ms (docs/BENCHMARKS.md,
# "pgvector at scale"). So identification scans an owner with up to EXACT_SEARCH_MAX examples
# exactly: at 20k that costs about 15-19 ms p95, still less than the index at a 2 % share; past
# about 30k the index is quicker, and an owner that big usually holds most of it (one household).
EXACT_SEARCH_MAX = 20_000
# The owner's examples counted up to the limit only, through the btree on owner and is_example.
_FEW_EXAMPLES = """(SELECT count(*) FROM (SELECT FROM recognition_face WHERE owner_id = %(owner)s AND is_example
                     LIMIT %(exact_max)s + 1) examples) <= %(exact_max)s"""
# HNSW only answers index scans: without them the owner's rows come from a bitmap scan of the
# btree on owner (the subject join stays a bitmap scan of its primary key). set_config(…, true)
# is SET LOCAL; the one-time filter runs it only for an owner with few examples.
_EXACT_IF_FEW_EXAMPLES = f"SELECT set_config('enable_indexscan', 'off', true) WHERE {_FEW_EXAMPLES}"
# SET LOCAL lasts until the caller's transaction ends (a savepoint's release keeps it): put index
# scans back, or every later query of a pipeline's save (clustering's neighbour search above all)
# would scan the owner's faces without HNSW.
_INDEX_SCANS_BACK = "SET LOCAL enable_indexscan TO DEFAULT"
# Identification: the exact plan where the owner has few examples, else HNSW's settings.
_IDENTIFY_SETTINGS = f"{_EXACT_IF_FEW_EXAMPLES}; {_SEARCH_SETTINGS}"
# Clustering asks for few neighbours of very many faces: a smaller candidate list suffices
# (it still holds more than the k asked for) and costs a third of the page visits.
_NEIGHBOUR_SETTINGS = f"{_SCAN}; SET LOCAL hnsw.ef_search = 100"


@dataclass(frozen=True)
class Candidate:
    subject_id: int
    subject_name: str
    distance: float  # best (smallest) distance to any example of the subject
    votes: int  # how many of the k nearest examples belong to the subject


def _settings_scope():
    """A transaction for SET LOCAL: the caller's if there is one (a savepoint would cost two
    round trips and keep the settings all the same), else its own."""
    return transaction.atomic(savepoint=False)


def default_threshold() -> float:
    return settings.SIGHTLINE_MATCH_THRESHOLD


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.8g}" for x in vector) + "]"


def _rows_in_one_trip(cursor, before: str, query: str, params, after: str = "") -> list[tuple]:
    """``query``'s rows, with the statements of ``before`` run first and ``after`` last, all in
    one round trip: PostgreSQL runs the statements of one query string in order, each planned
    once the ones before it have run, so a SET LOCAL in ``before`` holds for ``query``. (Django's
    cursor binds parameters on the client, which a string of several statements needs.)"""
    cursor.execute(";\n".join(part for part in (before, query, after) if part), params)
    for _ in range(sum(1 for statement in before.split(";") if statement.strip())):
        cursor.nextset()
    return cursor.fetchall()


# The k nearest examples of each query face. vector[], not text cast in the subquery: an exact
# scan would parse the query vector again for every row.
_NEAREST_EXAMPLES_SQL = """
    SELECT q.idx, f.subject_id, s.name, f.distance
    FROM unnest(%(vectors)s::vector[]) WITH ORDINALITY AS q(vec, idx)
    CROSS JOIN LATERAL (
        SELECT subject_id, embedding <-> q.vec AS distance
        FROM recognition_face
        WHERE owner_id = %(owner)s AND is_example
        ORDER BY embedding <-> q.vec
        LIMIT %(k)s
    ) f
    JOIN recognition_subject s ON s.id = f.subject_id
    ORDER BY q.idx, f.distance
"""


def nearest_subjects(owner_id: int, embeddings: np.ndarray, k: int = NEAREST_EXAMPLES) -> list[list[Candidate]]:
    """For each embedding, the owner's subjects among its k nearest examples, best first: the
    choice of plan, the settings, the search and the settings' reset in one round trip."""
    if len(embeddings) == 0:
        return []
    params = {"owner": owner_id, "exact_max": EXACT_SEARCH_MAX, "k": k,
              "vectors": [vector_literal(e) for e in embeddings]}
    with _settings_scope(), connection.cursor() as cursor:
        rows = _rows_in_one_trip(cursor, _IDENTIFY_SETTINGS, _NEAREST_EXAMPLES_SQL, params, after=_INDEX_SCANS_BACK)
    per_face: list[dict[int, Candidate]] = [dict() for _ in range(len(embeddings))]
    for idx, subject_id, name, distance in rows:
        found = per_face[idx - 1]
        if subject_id in found:
            best = found[subject_id]
            found[subject_id] = Candidate(subject_id, name, best.distance, best.votes + 1)
        else:
            found[subject_id] = Candidate(subject_id, name, float(distance), 1)
    return [sorted(found.values(), key=lambda c: (c.distance, -c.votes)) for found in per_face]


def searched_exactly(cursor, owner_id: int) -> bool:
    """Whether identification scans the owner's examples exactly (``EXACT_SEARCH_MAX``)."""
    cursor.execute(f"SELECT {_FEW_EXAMPLES}", {"owner": owner_id, "exact_max": EXACT_SEARCH_MAX})
    return cursor.fetchone()[0]


def assign_unique(candidates: list[list[Candidate]], groups: Sequence, threshold: float,
                  excluded: Sequence[set[int]] | None = None,
                  taken: set[tuple] | None = None) -> list[Candidate | None]:
    """Pick one subject per face, never the same subject twice within a group (one photo or
    one video frame): the closest pairs are settled first, so the better match keeps the
    person and the other face falls back to its next candidate, or to unknown.

    ``excluded[i]``: subjects face i must not get (a person said "not this person");
    ``taken``: (group, subject) pairs already decided (faces a person named in the picture).
    """
    pairs = sorted(
        (candidate.distance, face, candidate)
        for face, face_candidates in enumerate(candidates)
        for candidate in face_candidates
        if candidate.distance <= threshold and not (excluded and candidate.subject_id in excluded[face])
    )
    chosen: list[Candidate | None] = [None] * len(candidates)
    taken = set(taken or ())
    for _, face, candidate in pairs:
        key = (groups[face], candidate.subject_id)
        if chosen[face] is None and key not in taken:
            chosen[face] = candidate
            taken.add(key)
    return chosen


def identify(owner_id: int, embeddings: np.ndarray, groups: Sequence | None = None,
             threshold: float | None = None, excluded: Sequence[set[int]] | None = None,
             taken: set[tuple] | None = None) -> tuple[list[Candidate | None], list[list[Candidate]]]:
    """Who each face is (or None), and every face's candidates for display (``assign_unique``
    says what ``excluded`` and ``taken`` mean)."""
    threshold = default_threshold() if threshold is None else threshold
    groups = groups if groups is not None else [0] * len(embeddings)
    candidates = nearest_subjects(owner_id, embeddings)
    return assign_unique(candidates, groups, threshold, excluded, taken), candidates


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def similar_faces(owner_id: int, embedding: np.ndarray, limit: int = 50, max_distance: float | None = None,
                  exclude_id: int | None = None) -> list:
    """The owner's faces nearest to ``embedding`` ("find this face everywhere"), via the HNSW
    index with the iterative scan, so other owners' nearer faces never leave the list short.
    Dismissed false positives are left out."""
    from pgvector.django import L2Distance

    from recognition.models import Face

    queryset = (
        Face.objects.filter(owner_id=owner_id, dismissed=False)
        .annotate(distance=L2Distance("embedding", list(map(float, embedding))))
        .order_by("distance")
    )
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    if max_distance is not None:
        queryset = queryset.filter(distance__lte=max_distance)
    with _settings_scope(), connection.cursor() as cursor:
        cursor.execute(_SEARCH_SETTINGS)
        found = list(queryset[:limit])
    # The iterative scan's relaxed order may hand rows back slightly out of order.
    return sorted(found, key=lambda face: (face.distance, face.pk))


def cluster_mates(owner_id: int, max_distance: float) -> list[tuple[int, int, float]]:
    """Pairs of the owner's faces in one person without a name, within ``max_distance``,
    computed exactly in SQL (people without a name are small, so the pairs are few). With
    them a full recluster rebuilds what it built before even where the approximate index
    search misses a pair: it is idempotent."""
    sql = """
        SELECT a.id, b.id, a.embedding <-> b.embedding
        FROM recognition_face a
        JOIN recognition_face b ON b.subject_id = a.subject_id AND b.id > a.id
        JOIN recognition_subject s ON s.id = a.subject_id AND s.name = ''
        WHERE a.owner_id = %s AND b.owner_id = %s AND NOT a.dismissed AND NOT b.dismissed
          AND a.embedding <-> b.embedding <= %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [owner_id, owner_id, max_distance])
        return [(a, b, float(d)) for a, b, d in cursor.fetchall()]


def face_neighbours(owner_id: int, face_ids: Sequence[int], k: int, max_distance: float) -> dict[int, list]:
    """For each of the owner's faces in ``face_ids``: its nearest other faces of the owner
    within ``max_distance`` (at most ``k``), as ``[(face_id, distance), ...]`` nearest first.
    Dismissed faces are neither asked about nor returned. One round trip per call."""
    neighbours: dict[int, list] = {face_id: [] for face_id in face_ids}
    if not face_ids:
        return neighbours
    sql = """
        SELECT q.id, n.id, n.distance
        FROM recognition_face q
        CROSS JOIN LATERAL (
            SELECT f.id, f.embedding <-> q.embedding AS distance
            FROM recognition_face f
            WHERE f.owner_id = %s AND NOT f.dismissed AND f.id <> q.id
            ORDER BY f.embedding <-> q.embedding
            LIMIT %s
        ) n
        WHERE q.id = ANY(%s) AND n.distance <= %s
        ORDER BY q.id, n.distance, n.id
    """
    with _settings_scope(), connection.cursor() as cursor:
        for face_id, other_id, distance in _rows_in_one_trip(cursor, _NEIGHBOUR_SETTINGS, sql,
                                                             [owner_id, k, list(face_ids), max_distance]):
            neighbours[face_id].append((other_id, float(distance)))
    return neighbours
