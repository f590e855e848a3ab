"""Unknown faces grouped into people without a name: density-based, like DBSCAN, on the
nearest neighbours pgvector's HNSW index finds (``search.face_neighbours``), never an
all-pairs loop.

Two faces are neighbours within ``SIGHTLINE_CLUSTER_DISTANCE``. A face seeds a person only
when it is clear (quality at least ``SIGHTLINE_CLUSTER_MIN_QUALITY``) and, with its
neighbours, makes ``SIGHTLINE_CLUSTER_MIN_FACES``; until then it waits, unknown. Always:

- two faces of one picture (a photo, or one video frame) never go into the same person, nor
  two tracks of a video that are seen in one frame (a track counts by its best face, which
  stands for every frame of the track);
- clustering never adds a face to a named person (matching does that, from the faces that
  teach it) and never merges two people;
- human decisions stand: a face a person named, marked unknown or dismissed is not moved, and
  a face is never put in a person it was rejected from ("not this person").

``cluster_new_faces`` runs after each job on its new unknown faces (join the nearest person
without a name, or seed a new one). ``recluster`` clusters all of an owner's waiting faces,
or with ``full`` rebuilds every automatic grouping; it is idempotent, and keeps the ids (and
with them hidden flags and feedback) of the people it rebuilds. Both hold a per-owner lock,
so two workers never cluster one owner's faces at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F, Q

from recognition import face_results, search
from recognition.models import Decider, Face, FaceRejection, Subject

# pg_advisory_xact_lock(namespace, owner id): "clustering this owner's faces".
LOCK_NAMESPACE = 7
BATCH = 500  # faces per nearest-neighbour round trip in a recluster
PARALLEL_FROM = 5000  # faces from which a recluster searches on several connections
WRITE_BATCH = 5000  # faces moved per UPDATE


def distance() -> float:
    return settings.SIGHTLINE_CLUSTER_DISTANCE


def min_faces() -> int:
    return settings.SIGHTLINE_CLUSTER_MIN_FACES


def min_quality() -> float:
    return settings.SIGHTLINE_CLUSTER_MIN_QUALITY


def neighbours_per_face() -> int:
    return settings.SIGHTLINE_CLUSTER_NEIGHBOURS


def _lock_owner(owner_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, owner_id])


def _frame_key(asset_id: int, frame_index: int | None) -> tuple[int, int]:
    return (asset_id, -1 if frame_index is None else frame_index)


def _pictures(rows) -> dict[int, frozenset]:
    """Each face's pictures, from rows of (pk, asset_id, frame_index, appearance_id): its photo
    or frame, and for a video track's face every frame the track is seen in. Two faces whose
    pictures meet are two people."""
    appearances = {row[3] for row in rows if row[3] is not None}
    frames: dict[int, set] = defaultdict(set)
    if appearances:  # photos only: no tracks to follow (and no query to build)
        for appearance_id, asset_id, frame_index in Face.objects.filter(appearance_id__in=appearances).values_list(
                "appearance_id", "asset_id", "frame_index"):
            frames[appearance_id].add(_frame_key(asset_id, frame_index))
    return {pk: frozenset({_frame_key(asset_id, frame_index), *frames.get(appearance_id, ())})
            for pk, asset_id, frame_index, appearance_id in rows}


# --- after each job ---------------------------------------------------------------------------


def cluster_new_faces(owner_id: int, face_ids: list[int]) -> int:
    """Put the given faces, where they are automatic unknowns, into a person without a name:
    the one most of their close neighbours belong to, or a new one they seed with their
    waiting neighbours. Returns how many faces got a person."""
    # Inside a caller's transaction (a pipeline's save) no savepoint: an error ends it anyway,
    # and the owner's lock is held to its end all the same.
    with transaction.atomic(savepoint=False):
        _lock_owner(owner_id)
        faces = list(
            Face.objects.filter(pk__in=face_ids, owner_id=owner_id, dismissed=False, decided_by=Decider.AUTO,
                                subject__isnull=True).order_by("-quality", "id")
        )
        if not faces:
            return 0
        near = search.face_neighbours(owner_id, [f.pk for f in faces], neighbours_per_face(), distance())
        # Faces of a video track other than its best follow the best one: never seeds.
        rows = Face.objects.filter(pk__in={o for pairs in near.values() for o, _ in pairs}).one_per_track().values_list(
            "pk", "asset_id", "frame_index", "subject_id", "subject__name", "decided_by", "appearance_id")
        known = {row[0]: row[1:6] for row in rows}
        pictures = _pictures([(row[0], row[1], row[2], row[6]) for row in rows]
                             + [(f.pk, f.asset_id, f.frame_index, f.appearance_id) for f in faces])
        rejected = _rejections([f.pk for f in faces])
        placed = 0
        for face in faces:
            key = pictures[face.pk]
            others = [(o, d) for o, d in near[face.pk] if o in known and not pictures[o] & key]
            subject_id = _joinable_person(face, key, others, known, rejected[face.pk])
            if subject_id is not None:
                members = [face.pk]
            elif face.quality >= min_quality():
                members = _seed(face, key, others, known, pictures)
                if len(members) < min_faces():
                    continue
                subject_id = Subject.objects.create(owner_id=owner_id, name="").pk
            else:
                continue
            # Only faces still automatic: a person may have decided about one since it was read.
            Face.objects.filter(pk__in=members, decided_by=Decider.AUTO).update(subject_id=subject_id,
                                                                               match_distance=None)
            for member in members:
                if member in known:
                    asset_id, frame_index, _, _, decided_by = known[member]
                    known[member] = (asset_id, frame_index, subject_id, "", decided_by)
            known[face.pk] = (face.asset_id, face.frame_index, subject_id, "", Decider.AUTO)
            placed += len(members)
        return placed


def _joinable_person(face, key, others, known, rejected: set[int]) -> int | None:
    """The unnamed person most of the face's neighbours belong to that may take it."""
    votes: dict[int, list[float]] = defaultdict(list)
    for other, d in others:
        _, _, subject_id, subject_name, _ = known[other]
        if subject_id is not None and not subject_name and subject_id not in rejected:
            votes[subject_id].append(d)
    in_pictures = Q()
    for asset_id, frame_index in key:
        in_pictures |= Q(asset_id=asset_id, frame_index=None if frame_index == -1 else frame_index)
    for subject_id in sorted(votes, key=lambda s: (-len(votes[s]), min(votes[s]), s)):
        if not Face.objects.filter(in_pictures, subject_id=subject_id).exists():
            return subject_id
    return None


def _seed(face, key, others, known, pictures) -> list[int]:
    """The face and its waiting (automatic, unknown) neighbours, one per picture."""
    members, taken = [face.pk], set(key)
    for other, _ in others:
        _, _, subject_id, _, decided_by = known[other]
        if subject_id is None and decided_by == Decider.AUTO and not pictures[other] & taken:
            members.append(other)
            taken |= pictures[other]
    return members


def _rejections(face_ids) -> dict[int, set[int]]:
    rejected: dict[int, set[int]] = defaultdict(set)
    for face_id, subject_id in FaceRejection.objects.filter(face_id__in=face_ids).values_list("face_id", "subject_id"):
        rejected[face_id].add(subject_id)
    return rejected


# --- all of an owner's faces ------------------------------------------------------------------


@dataclass
class ReclusterResult:
    faces: int = 0  # faces considered
    clustered: int = 0  # of them, in a person without a name afterwards
    people: int = 0  # people without a name afterwards
    created: int = 0
    removed: int = 0  # people without a name left with no face, deleted
    changed: int = 0  # faces whose person changed


@dataclass
class _Group:
    """A growing cluster: its faces, the pictures they are in, and a fixed person (a person
    without a name that a human put faces into, or an existing one in an incremental run)."""

    members: list[int]
    pictures: set[tuple[int, int]]
    person: int | None = None
    size: int = field(default=1)


def recluster(owner_id: int, full: bool = False,
              progress: Callable[[int, int], None] | None = None) -> ReclusterResult:
    """Cluster the owner's waiting unknown faces; with ``full``, rebuild every automatic
    grouping from scratch (faces people put in place stay where they are)."""
    with transaction.atomic():
        _lock_owner(owner_id)
        waiting = Q(subject__isnull=True, decided_by=Decider.AUTO) | Q(subject__name="")
        # A video track counts once: by its best face, which the track follows afterwards.
        follower = Q(appearance__isnull=False) & ~Q(appearance__best_face=F("pk"))
        nodes = {
            row.pk: row for row in Face.objects.filter(waiting, owner_id=owner_id, dismissed=False)
            .exclude(follower)
            .order_by("pk").values_list("pk", "asset_id", "frame_index", "quality", "subject_id", "decided_by",
                                        "appearance_id", named=True)
        }
        # Fixed: faces a person put in an unnamed person; in an incremental run, every face
        # already in one. Movable: the rest (automatic).
        fixed = {
            pk: face.subject_id for pk, face in nodes.items()
            if face.subject_id is not None and (face.decided_by == Decider.HUMAN or not full)
        }
        result = ReclusterResult(faces=len(nodes))
        near = _all_neighbours(owner_id, list(nodes), progress)
        for a, b, d in search.cluster_mates(owner_id, distance()):
            near.setdefault(a, []).append((b, d))
            near.setdefault(b, []).append((a, d))
        rejected = _rejections(list(nodes))
        groups = _dbscan(nodes, fixed, near, rejected)
        assignment = _name_groups(owner_id, nodes, groups, rejected, result)
        result.changed = _write(nodes, assignment)
        face_results.follow_tracks(owner_id=owner_id)
        _, deleted = Subject.objects.filter(owner_id=owner_id, name="", faces__isnull=True).delete()
        result.removed = deleted.get(Subject._meta.label, 0)
        result.clustered = sum(1 for subject_id in assignment.values() if subject_id is not None)
        result.people = Subject.objects.filter(owner_id=owner_id, name="").count()
        return result


def _all_neighbours(owner_id, face_ids, progress) -> dict[int, list]:
    """Every face's neighbours, a batch per round trip. Many faces are searched on several
    connections at once (``SIGHTLINE_CLUSTER_THREADS``): PostgreSQL runs each on a core of its
    own. They read committed faces only, which is all a recluster clusters."""
    batches = [face_ids[start:start + BATCH] for start in range(0, len(face_ids), BATCH)]
    threads = min(settings.SIGHTLINE_CLUSTER_THREADS, len(batches))
    near: dict[int, list] = {}
    done = 0

    def search_batch(batch):
        return search.face_neighbours(owner_id, batch, neighbours_per_face(), distance())

    def report(batch_result):
        nonlocal done
        near.update(batch_result)
        done += len(batch_result)
        if progress:
            progress(done, len(face_ids))

    if threads <= 1 or len(face_ids) < PARALLEL_FROM:
        for batch in batches:
            report(search_batch(batch))
        return near

    def worker(mine):
        try:
            return [search_batch(batch) for batch in mine]
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for results in pool.map(worker, [batches[i::threads] for i in range(threads)]):
            for result in results:
                report(result)
    return near


def _dbscan(nodes, fixed, near, rejected) -> list[_Group]:
    """DBSCAN over the neighbour graph, with cannot-links: core faces join through their
    closest edges first, unless that would put two faces of one picture or two fixed people
    together; then border faces join the group of their nearest core neighbour that may take
    them (not a person they were rejected from)."""
    keys = _pictures([(pk, f.asset_id, f.frame_index, f.appearance_id) for pk, f in nodes.items()])
    edges = {pk: sorted({(o, d) for o, d in near.get(pk, []) if o in nodes and not keys[o] & keys[pk]},
                        key=lambda edge: (edge[1], edge[0])) for pk in nodes}
    core = {pk for pk, f in nodes.items()
            if pk in fixed or (f.quality >= min_quality() and len(edges[pk]) + 1 >= min_faces())}
    parent = {pk: pk for pk in nodes}
    groups = {pk: _Group([pk], set(keys[pk]), fixed.get(pk)) for pk in core}

    def root(pk):
        while parent[pk] != pk:
            parent[pk] = parent[parent[pk]]
            pk = parent[pk]
        return pk

    def compatible(a: _Group, b: _Group) -> bool:
        # A face that said "not this person" does not stop its neighbours joining that person;
        # it is left out of them afterwards (``_name_groups``).
        if a.pictures & b.pictures:
            return False
        return a.person is None or b.person is None or a.person == b.person

    core_edges = sorted(
        (d, min(a, b), max(a, b)) for a in core for b, d in edges[a] if b in core
    )
    for _, a, b in core_edges:
        ra, rb = root(a), root(b)
        if ra == rb or not compatible(groups[ra], groups[rb]):
            continue
        big, small = (ra, rb) if groups[ra].size >= groups[rb].size else (rb, ra)
        parent[small] = big
        g, s = groups[big], groups.pop(small)
        g.members += s.members
        g.pictures |= s.pictures
        g.person = g.person if g.person is not None else s.person
        g.size += s.size

    for pk in sorted(set(nodes) - core):
        for other, _ in edges[pk]:  # nearest first
            if other not in core:
                continue
            g = groups[root(other)]
            if keys[pk] & g.pictures or (g.person is not None and g.person in rejected.get(pk, ())):
                continue
            g.members.append(pk)
            g.pictures |= keys[pk]
            g.size += 1
            break
    return [g for g in groups.values() if g.person is not None or g.size >= min_faces()]


def _name_groups(owner_id, nodes, groups, rejected, result) -> dict[int, int | None]:
    """Each group's person: its fixed one; else the existing person without a name that most
    of its faces are in already (so ids, hidden flags and feedback survive a rebuild); else a
    new one. Returns face id → person id (None: stays unknown)."""
    assignment: dict[int, int | None] = {pk: None for pk in nodes}
    used = {g.person for g in groups if g.person is not None}
    free = []
    for g in groups:
        if g.person is not None:
            for pk in g.members:
                assignment[pk] = g.person if g.person not in rejected.get(pk, ()) else None
            continue
        overlap: dict[int, int] = defaultdict(int)
        for pk in g.members:
            if nodes[pk].subject_id is not None:
                overlap[nodes[pk].subject_id] += 1
        free.append((g, overlap))
    # Largest overlaps first: the group that is most of an old person keeps that person.
    claims = sorted(((n, s, i) for i, (g, overlap) in enumerate(free) for s, n in overlap.items()), reverse=True)
    chosen: dict[int, int] = {}
    for _, subject_id, i in claims:
        if i not in chosen and subject_id not in used:
            chosen[i] = subject_id
            used.add(subject_id)
    new = [i for i in range(len(free)) if i not in chosen]
    for i, subject in zip(new, Subject.objects.bulk_create([Subject(owner_id=owner_id, name="") for _ in new])):
        chosen[i] = subject.pk
    result.created = len(new)
    for i, (g, _) in enumerate(free):
        for pk in g.members:
            assignment[pk] = chosen[i] if chosen[i] not in rejected.get(pk, ()) else None
    return assignment


def _write(nodes, assignment) -> int:
    """Only faces whose person changed, a few thousand per statement; and only faces still
    automatic, since a person may have decided about one while the recluster ran."""
    moves = [(pk, subject_id) for pk, subject_id in assignment.items() if nodes[pk].subject_id != subject_id]
    with connection.cursor() as cursor:
        for start in range(0, len(moves), WRITE_BATCH):
            chunk = moves[start:start + WRITE_BATCH]
            cursor.execute(
                "UPDATE recognition_face f SET subject_id = m.subject_id, match_distance = NULL "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS m(id, subject_id) WHERE f.id = m.id AND f.decided_by = %s",
                [[pk for pk, _ in chunk], [subject_id for _, subject_id in chunk], Decider.AUTO],
            )
    return len(moves)
