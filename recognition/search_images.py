"""Similar photos and near-duplicates: pgvector queries over the whole-image embeddings
(MobileNetV2's pooled features, 1280-d, ``image_embedding_hnsw``: HNSW, cosine distance).

Every query is limited to one owner's photos. The embedding table has no owner column, so the
owner is asked of the joined asset; as in ``search`` the queries run with HNSW's iterative scan,
so when the planner walks the index (a big library) and the nearest images belong to other
owners, it keeps walking until it has this owner's nearest. For a small library PostgreSQL
ranks the owner's few embeddings exactly, which is as good. ``relaxed_order`` may return
the index's neighbours slightly out of order, so the nearest are re-sorted by their distance.

Distances are cosine distances (0: same direction; the embeddings are non-negative, so at most
1). Near-duplicates are photos within ``SIGHTLINE_DUPLICATE_DISTANCE`` of each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Max

from config.refusals import Refusal
from media.models import Asset
from recognition.models import ImageEmbedding, Job

# As recognition.search: iterative scans keep going until the owner's rows are found.
_SEARCH_SETTINGS = ("SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = 100; "
                    "SET LOCAL hnsw.max_scan_tuples = 200000")  # see recognition.search
# Neighbours looked at per photo when looking for near-duplicates (a group can be bigger: it
# is joined through its members' neighbours).
DUPLICATE_NEIGHBOURS = 8
DUPLICATES_CACHE_SECONDS = 24 * 3600


class NotComparable(Refusal):
    """The asset cannot be compared yet (a video, or a photo not processed)."""

    code = "not_comparable"
    status = 409


@dataclass(frozen=True)
class SimilarPhoto:
    asset: Asset
    distance: float


def _comparable(asset: Asset) -> None:
    if asset.is_video:
        raise NotComparable("Similar photos are found for photos, not videos.", status=400, code="not_a_photo")
    if not ImageEmbedding.objects.filter(asset=asset).exists():
        raise NotComparable(f"{asset.original_name} has not been processed yet: similar photos are found once "
                            "it has.")


def similar_photos(asset: Asset, limit: int = 20, max_distance: float | None = None) -> list[SimilarPhoto]:
    """The owner's other photos nearest to ``asset``, nearest first (at most ``limit``, none
    further than ``max_distance``). Raises ``NotComparable`` for a video or an unprocessed photo."""
    _comparable(asset)
    sql = """
        WITH query AS (SELECT embedding FROM recognition_imageembedding WHERE asset_id = %(asset)s),
        nearest AS MATERIALIZED (
            SELECT e.asset_id, e.embedding <=> (SELECT embedding FROM query) AS distance
            FROM recognition_imageembedding e
            JOIN media_asset a ON a.id = e.asset_id
            WHERE a.owner_id = %(owner)s AND a.kind = 'image' AND e.asset_id <> %(asset)s
            ORDER BY e.embedding <=> (SELECT embedding FROM query)
            LIMIT %(limit)s
        )
        SELECT asset_id, distance FROM nearest
        WHERE %(max_distance)s::float8 IS NULL OR distance <= %(max_distance)s::float8
        ORDER BY distance, asset_id
    """
    params = {"asset": asset.pk, "owner": asset.owner_id, "limit": limit, "max_distance": max_distance}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SEARCH_SETTINGS)
        cursor.execute(sql, params)
        found = cursor.fetchall()
    assets = Asset.objects.in_bulk([asset_id for asset_id, _ in found])
    return [SimilarPhoto(assets[asset_id], float(distance)) for asset_id, distance in found if asset_id in assets]


def near_duplicate_pairs(owner_id: int, max_distance: float) -> list[tuple[int, int, float]]:
    """(photo, photo, distance) for every two of the owner's photos within ``max_distance``,
    each pair once (smaller id first), in one query.

    Two ways, whichever costs less: comparing every two of the owner's photos (n²/2 distances)
    or one nearest-neighbour search per photo through the HNSW index. An iterative scan walks
    past other owners' photos to find this owner's, so the searches together cost about the
    size of the whole table, whatever the owner's share. Measured here (2 cores, 1280-d):
    ~4 µs per pair compared, ~0.5 ms per embedding in the table for the searches; comparing
    pairs wins below about √(125 × table size) photos (1,500 photos in a table of 18,000)."""
    photos = ImageEmbedding.objects.filter(asset__owner_id=owner_id, asset__kind=Asset.Kind.IMAGE).count()
    if photos < 2:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'recognition_imageembedding'::regclass")
        table = max(float(cursor.fetchone()[0]), photos)
    if photos * photos * PAIR_SECONDS / 2 <= table * SEARCH_SECONDS_PER_ROW:
        sql, params = _EVERY_PAIR, {"owner": owner_id, "max_distance": max_distance}
    else:
        sql, params = _NEAREST_PER_PHOTO, {"owner": owner_id, "k": DUPLICATE_NEIGHBOURS, "max_distance": max_distance}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SEARCH_SETTINGS)
        cursor.execute(sql, params)
        found = cursor.fetchall()
    # A search finds a pair from either side (B among A's nearest, or A among B's): once each.
    pairs = {(min(a, b), max(a, b)): float(d) for a, b, d in found}
    return sorted(((a, b, d) for (a, b), d in pairs.items()), key=lambda pair: (pair[2], pair[0], pair[1]))


PAIR_SECONDS = 4e-6
SEARCH_SECONDS_PER_ROW = 5e-4
_OWNERS_PHOTOS = """
    SELECT e.asset_id, e.embedding FROM recognition_imageembedding e JOIN media_asset a ON a.id = e.asset_id
    WHERE a.owner_id = %(owner)s AND a.kind = 'image'
"""
_EVERY_PAIR = f"""
    WITH mine AS MATERIALIZED ({_OWNERS_PHOTOS})
    SELECT x.asset_id, y.asset_id, x.embedding <=> y.embedding AS distance
    FROM mine x JOIN mine y ON x.asset_id < y.asset_id
    WHERE (x.embedding <=> y.embedding) <= %(max_distance)s
"""
_NEAREST_PER_PHOTO = f"""
    WITH mine AS MATERIALIZED ({_OWNERS_PHOTOS})
    SELECT q.asset_id, n.asset_id, n.distance
    FROM mine q
    CROSS JOIN LATERAL (
        SELECT e.asset_id, e.embedding <=> q.embedding AS distance
        FROM recognition_imageembedding e
        JOIN media_asset a ON a.id = e.asset_id
        WHERE a.owner_id = %(owner)s AND a.kind = 'image' AND e.asset_id <> q.asset_id
        ORDER BY e.embedding <=> q.embedding
        LIMIT %(k)s
    ) AS n
    WHERE n.distance <= %(max_distance)s
"""


@dataclass(frozen=True)
class DuplicateGroup:
    assets: list[Asset]  # newest first
    distance: float  # the largest distance of a pair that joined the group


def group_pairs(pairs: list[tuple[int, int, float]]) -> list[tuple[list[int], float]]:
    """Pairs joined into groups (connected components): a photo near a photo near a third
    is one group. Biggest groups first, then the closest."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b, _ in pairs:
        parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    spread: dict[int, float] = {}
    for a, b, distance in pairs:
        spread[root(a)] = max(spread.get(root(a), 0.0), distance)
    for node in list(parent):
        members.setdefault(root(node), []).append(node)
    groups = [(sorted(ids), spread[top]) for top, ids in members.items()]
    return sorted(groups, key=lambda group: (-len(group[0]), group[1], group[0][0]))


def _duplicates_key(owner_id: int, max_distance: float) -> str:
    """Changes whenever the owner's image embeddings may have: a job finished, a photo came or went."""
    state = Job.objects.filter(asset__owner_id=owner_id).aggregate(last=Max("finished_at"), jobs=Count("id"))
    photos = ImageEmbedding.objects.filter(asset__owner_id=owner_id).aggregate(n=Count("id"), last=Max("id"))
    stamp = f"{state['last'].timestamp() if state['last'] else 0}:{state['jobs']}:{photos['n']}:{photos['last']}"
    return f"recognition:duplicates:{owner_id}:{max_distance}:{stamp}"


def near_duplicates(owner_id: int, max_distance: float | None = None) -> list[DuplicateGroup]:
    """The owner's near-duplicate photos in groups. One search per photo makes this the costly
    query of the library, so the grouping is cached until the owner's photos change."""
    max_distance = settings.SIGHTLINE_DUPLICATE_DISTANCE if max_distance is None else max_distance
    key = _duplicates_key(owner_id, max_distance)
    groups = cache.get(key)
    if groups is None:
        groups = group_pairs(near_duplicate_pairs(owner_id, max_distance))
        cache.set(key, groups, DUPLICATES_CACHE_SECONDS)
    assets = Asset.objects.in_bulk([asset_id for ids, _ in groups for asset_id in ids])
    result = []
    for ids, distance in groups:
        members = sorted((assets[i] for i in ids if i in assets), key=lambda a: (a.created_at, a.pk), reverse=True)
        if len(members) > 1:
            result.append(DuplicateGroup(members, distance))
    return result
