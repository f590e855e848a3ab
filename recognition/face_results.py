"""An asset's detected faces written over its previous ones, keeping every human decision; a
video's tracks written as appearances; the crops written by the pipeline.

A re-run (or a reindex) detects the faces again. Each new detection takes over the stored face
at the same place (same frame, boxes overlapping by ``SAME_FACE_IOU``), so its id and what people
decided about it (a name, "not this person", "not a face") carry over; only its geometry,
embedding, quality and crop are refreshed. Stored faces a person decided about stay even when
the detector no longer finds them; other stored faces without a new detection are deleted.
Detections where an erased person's face was are dropped.

Then the automatic faces are matched, against the faces that teach recognition (examples and
named faces), never to a person a face was rejected from nor to a person already named in the
same picture:

- a photo face by face;
- a video track by track: its faces vote (each for the person it matches, weighted by its
  quality), and a person needs ``TRACK_VOTE_SHARE`` of the track, so one misrecognised
  frame does not make a person; never one person for two tracks seen at the same time. A track some of
  whose faces a person named is that person; one a person dismissed is dismissed. The faces of
  a track all get its person.

A face (a track) that matches nobody stays in its person without a name, if it had one, and
otherwise waits for clustering: a video is clustered by each track's best face, which its
track then follows (``follow_tracks``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from django.core.files.base import ContentFile
from django.db import connection, transaction

from config.db import update_rows
from media import services as media_services
from recognition import search
from recognition.models import (
    SAME_FACE_IOU, Appearance, Decider, ErasedFace, Face, FaceRejection, box_area, box_iou,
)

GEOMETRY_FIELDS = ["job", "frame_index", "timestamp", "box", "landmarks", "score", "quality", "embedding",
                   "model_version", "subject", "match_distance", "dismissed", "decided_by", "appearance"]


def frame_group(frame_index: int | None) -> int:
    return -1 if frame_index is None else frame_index


def pair_by_box(stored: Sequence[Face], found: Sequence) -> dict[int, Face]:
    """found index → the stored face it re-detects: same frame, best overlap first."""
    pairs = sorted(
        ((box_iou(face.box, detection.box), i, face.pk, face)
         for i, detection in enumerate(found)
         for face in stored
         if face.frame_index == detection.frame_index),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    taken_found, taken_stored, paired = set(), set(), {}
    for iou, i, pk, face in pairs:
        if iou < SAME_FACE_IOU:
            break
        if i in taken_found or pk in taken_stored:
            continue
        paired[i] = face
        taken_found.add(i)
        taken_stored.add(pk)
    return paired


def not_erased(asset, found: list) -> list[int]:
    """Indexes of the detections that are not where an erased person's face was."""
    erased = list(ErasedFace.objects.filter(asset=asset).values_list("frame_index", "box"))
    return [
        i for i, f in enumerate(found)
        if not any(frame == f.frame_index and box_iou(box, f.box) >= SAME_FACE_IOU for frame, box in erased)
    ]


def store_faces(job, found: list, model_version: str, tracks=None, frames=None, written=None) -> list[Face]:
    """Write ``found`` (the pipeline's FoundFace list) as the asset's faces, ``tracks`` (engine
    Tracks over ``found``, videos only) as its appearances, with crops and best frames; returns
    the faces to cluster (automatic unknowns; for a video, each unknown track's best face).
    ``written`` collects the names of the files written, for the caller to delete should the
    transaction fail. Call inside a transaction."""
    asset = job.asset
    written = [] if written is None else written
    kept = not_erased(asset, found)
    # Locked until commit: a person's decision on one of these faces waits for this run to
    # be written and then stands, instead of being overwritten by what was read here.
    stored = list(Face.objects.select_for_update().filter(asset=asset))
    paired = pair_by_box(stored, [found[i] for i in kept])
    reused = {face.pk for face in paired.values()}
    if stored:  # nothing of an earlier run to remove on a first one
        Face.objects.filter(asset=asset, decided_by=Decider.AUTO).exclude(pk__in=reused).delete()
    if tracks is not None:
        Appearance.objects.filter(asset=asset).delete()  # rebuilt from this run's tracks
    old_crops = {face.pk: face.crop.name for face in paired.values() if face.crop}

    faces: dict[int, Face] = {}  # found index → face
    for n, i in enumerate(kept):
        detection = found[i]
        face = paired.get(n) or Face(asset=asset, owner_id=asset.owner_id)
        face.job = job
        face.frame_index = detection.frame_index
        face.timestamp = detection.timestamp
        face.box = [round(float(v), 2) for v in detection.box]
        face.landmarks = np.round(detection.landmarks.astype(float), 2).tolist()
        face.score = float(detection.score)
        face.quality = float(detection.quality)
        face.embedding = detection.embedding
        face.model_version = model_version
        face.appearance = None
        faces[i] = face

    track_faces = None
    if tracks is not None:
        track_faces = [[faces[i] for i in track.detections if i in faces] for track in tracks]
        _decide_tracks(asset, tracks, track_faces)
    else:
        _match(asset, [f for f in faces.values() if f.decided_by == Decider.AUTO and not f.dismissed], stored)

    update_rows([f for f in faces.values() if f.pk], GEOMETRY_FIELDS)
    Face.objects.bulk_create([f for f in faces.values() if not f.pk], batch_size=500)
    _write_crops(faces, found, written)
    transaction.on_commit(lambda: delete_files(list(old_crops.values())))

    if tracks is None:
        media_services.focus_thumbnail_on(asset, _largest_box(faces.values()))
        return [f for f in faces.values() if f.decided_by == Decider.AUTO and not f.dismissed and f.subject_id is None]
    return _write_appearances(job, tracks, track_faces, frames or {}, written)


def _largest_box(faces) -> list[float] | None:
    """The box of the largest face a person has not called "not a face"."""
    shown = [f.box for f in faces if not f.dismissed]
    return max(shown, key=box_area, default=None)


def _write_crops(faces: dict, found: list, written: list) -> None:
    for i, face in faces.items():
        if found[i].crop:
            face.crop.save("crop.jpg", ContentFile(found[i].crop), save=False)
            written.append(face.crop.name)
        else:
            face.crop = ""
    update_rows(list(faces.values()), ["crop"])


def _write_appearances(job, tracks, track_faces, frames: dict, written: list) -> list[Face]:
    """One appearance per track that still has faces; returns the best faces of unknown ones."""
    asset, unknown = job.asset, []
    for track, members in zip(tracks, track_faces):
        if not members:
            continue
        shown = [f for f in members if not f.dismissed] or members
        best = max(shown, key=lambda f: (f.quality, -f.pk))
        appearance = Appearance.objects.create(
            asset=asset, owner_id=asset.owner_id, job=job, start_seconds=min(f.timestamp for f in members),
            end_seconds=max(f.timestamp for f in members), best_face=best, embedding=track.embedding,
            face_count=len(members),
        )
        if best.frame_index in frames:
            appearance.frame.save("frame.jpg", ContentFile(frames[best.frame_index]), save=True)
            written.append(appearance.frame.name)
        Face.objects.filter(pk__in=[f.pk for f in members]).update(appearance=appearance)
        if best.decided_by == Decider.AUTO and not best.dismissed and best.subject_id is None:
            unknown.append(best)
    return unknown


def follow_tracks(asset=None, owner_id: int | None = None) -> int:
    """Every automatic face of an appearance gets its best face's person (after clustering
    decided the best face's). One asset's appearances, or all of an owner's."""
    where, params = ("a.asset_id = %s", [asset.pk]) if asset is not None else ("a.owner_id = %s", [owner_id])
    with connection.cursor() as cursor:
        cursor.execute(f"""
            UPDATE recognition_face f
            SET subject_id = b.subject_id, match_distance = b.match_distance
            FROM recognition_appearance a JOIN recognition_face b ON b.id = a.best_face_id
            WHERE f.appearance_id = a.id AND {where} AND f.id <> b.id AND f.decided_by = 'auto'
              AND NOT f.dismissed AND NOT b.dismissed AND f.subject_id IS DISTINCT FROM b.subject_id
        """, params)
        return cursor.rowcount


def delete_files(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        if name:
            default_storage.delete(name)


# --- matching --------------------------------------------------------------------------------


def _rejections(faces) -> dict[int, set[int]]:
    rejected: dict[int, set[int]] = {}
    pks = [f.pk for f in faces if f.pk]
    for face_id, subject_id in FaceRejection.objects.filter(face_id__in=pks).values_list("face_id", "subject_id"):
        rejected.setdefault(face_id, set()).add(subject_id)
    return rejected


def _unnamed_clusters(faces) -> set[int]:
    from recognition.models import Subject

    ids = {f.subject_id for f in faces if f.subject_id}
    return set(Subject.objects.filter(pk__in=ids, name="").values_list("pk", flat=True))


def _match(asset, faces: list[Face], stored: list[Face]) -> None:
    """``stored``: the asset's faces as this run found them (locked), which include every face
    a person named here."""
    if not faces:
        return
    rejected = _rejections(faces)
    taken = {(frame_group(f.frame_index), f.subject_id) for f in stored
             if f.decided_by == Decider.HUMAN and f.subject_id is not None}
    unnamed = _unnamed_clusters(faces)
    embeddings = np.stack([np.asarray(f.embedding, dtype=np.float32) for f in faces])
    matches, _ = search.identify(
        asset.owner_id, embeddings, groups=[frame_group(f.frame_index) for f in faces],
        excluded=[rejected.get(f.pk, set()) for f in faces], taken=taken,
    )
    for face, match in zip(faces, matches):
        _take(face, match, unnamed, rejected.get(face.pk, set()))


def _take(face: Face, match, unnamed: set[int], rejected: set[int], keep=None) -> None:
    """An automatic face's person: the match; else the person without a name it was in."""
    keep = face.subject_id if keep is None else keep
    if match is not None:
        face.subject_id, face.match_distance = match.subject_id, match.distance
    elif keep in unnamed and keep not in rejected:
        face.subject_id, face.match_distance = keep, None
    else:
        face.subject_id, face.match_distance = None, None


def _decide_tracks(asset, tracks, track_faces) -> None:
    """A person (or a dismissal) per track, applied to its automatic faces."""
    all_faces = [f for members in track_faces for f in members]
    rejected = _rejections(all_faces)
    unnamed = _unnamed_clusters(all_faces)
    open_tracks, decided = [], []  # decided: (track, subject_id) fixed by people
    for track, members in zip(tracks, track_faces):
        auto = [f for f in members if f.decided_by == Decider.AUTO]
        human = [f for f in members if f.decided_by == Decider.HUMAN]
        named = Counter(f.subject_id for f in human if f.subject_id and not f.dismissed)
        if named:
            subject_id = named.most_common(1)[0][0]
            decided.append((track, subject_id))
            for face in auto:
                face.subject_id, face.match_distance, face.dismissed = subject_id, None, False
        elif human and sum(f.dismissed for f in human) * 2 > len(human):
            for face in auto:  # "not a face" said of this track
                face.subject_id, face.match_distance, face.dismissed = None, None, True
                face.decided_by = Decider.HUMAN
        elif auto:
            open_tracks.append((track, members, auto))
    if not open_tracks:
        return
    excluded = [set().union(*(rejected.get(f.pk, set()) for f in members)) for _, members, _ in open_tracks]
    faces = [f for _, members, _ in open_tracks for f in members if not f.dismissed]
    embeddings = np.stack([np.asarray(f.embedding, dtype=np.float32) for f in faces])
    per_face = dict(zip((f.pk or id(f) for f in faces), search.nearest_subjects(asset.owner_id, embeddings)))
    votes = [track_votes([f for f in members if not f.dismissed], per_face, rejects)
             for (_, members, _), rejects in zip(open_tracks, excluded)]
    chosen = assign_tracks([t for t, _, _ in open_tracks], votes, decided)
    for (track, members, auto), match, rejects in zip(open_tracks, chosen, excluded):
        keep = Counter(f.subject_id for f in auto if f.subject_id).most_common(1)
        for face in auto:
            _take(face, match, unnamed, rejects, keep=keep[0][0] if keep else None)


# A track is a person when faces worth this share of its quality match them: one frame
# misrecognised in a long track does not make a person, a person seen half the time does.
TRACK_VOTE_SHARE = 0.3


def track_votes(faces: list[Face], per_face: dict, excluded: set[int], threshold: float | None = None) -> list:
    """The people a track's faces match (each face's closest allowed one within the
    threshold), weighted by quality, as Candidates of the track, best first; only those whose
    votes reach ``TRACK_VOTE_SHARE`` of the track. A candidate's distance is its closest face's.

    Blurred faces vote too, with their little weight: on the shared Hamilton clip alex_lacamoire
    is only ever seen at quality 0.24–0.35 (0.58 from his gallery photos)."""
    threshold = search.default_threshold() if threshold is None else threshold
    total = sum(max(f.quality, 0.01) for f in faces)
    weight: dict[int, float] = {}
    best: dict[int, search.Candidate] = {}
    for face in faces:
        allowed = [c for c in per_face[face.pk or id(face)] if c.subject_id not in excluded and c.distance <= threshold]
        if not allowed:
            continue
        top = allowed[0]
        weight[top.subject_id] = weight.get(top.subject_id, 0.0) + max(face.quality, 0.01)
        if top.subject_id not in best or top.distance < best[top.subject_id].distance:
            best[top.subject_id] = top
    ranked = sorted(weight, key=lambda s: (-weight[s], best[s].distance))
    return [best[s] for s in ranked if weight[s] >= TRACK_VOTE_SHARE * total]


def _overlap(a, b) -> bool:
    return a.start <= b.end and b.start <= a.end


def assign_tracks(tracks, candidates, decided) -> list:
    """One person per track from its ``candidates`` (best first), strongest tracks first;
    never the same person for two tracks seen at the same time (nor for a track overlapping
    one a person named)."""
    order = sorted(range(len(tracks)), key=lambda i: candidates[i][0].distance if candidates[i] else 9.0)
    chosen: list = [None] * len(tracks)
    owners = list(decided)  # (track, subject) already holding a person
    for i in order:
        for candidate in candidates[i]:
            if any(subject == candidate.subject_id and _overlap(track, tracks[i]) for track, subject in owners):
                continue
            chosen[i] = candidate
            owners.append((tracks[i], candidate.subject_id))
            break
    return chosen
