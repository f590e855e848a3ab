"""What a person decides about faces and people. Each function is one decision, done in one
transaction, recorded on the faces it touches (``decided_by="human"``, ``decided_at``).

- ``name_face``: "this is X". The face becomes a confirmed face of X; clear enough (quality at
  least ``SIGHTLINE_ENROL_MIN_QUALITY``), it is also used for matching from then on, and the
  stored unknown faces it now recognises become X at once (``recognise_alike``).
- ``mark_unknown``: "I don't know who this is": no person, and nothing automatic gives it one.
- ``reject_face``: "not this person": stored as negative feedback; the face falls to its next
  candidate, or to clustering, or to unknown, never to that person again.
- ``dismiss_face`` / ``restore_face``: "not a face" (a false positive) and its undo.
- ``create_person``, ``rename_person`` (naming a cluster confirms its faces), ``merge_people``,
  ``set_hidden``, ``delete_person`` (faces become unknown), ``erase_person`` (every face,
  embedding and example of the person go, and re-runs do not bring them back).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from config.db import update_rows
from config.refusals import Refusal
from recognition import search
from recognition.models import Decider, ErasedFace, Face, FaceRejection, Subject
from recognition.signals import send_people_changed


class NameTaken(Refusal):
    """Another of the owner's people already has the name; the body says who, so a client
    can offer to merge instead."""

    code = "name_taken"
    status = 409

    def __init__(self, existing: Subject):
        super().__init__(
            f"You already have a person called {existing.name}. Merge the two instead, if they are the same person.",
            existing={"id": existing.pk, "name": existing.name},
        )
        self.existing = existing


def min_quality() -> float:
    return settings.SIGHTLINE_ENROL_MIN_QUALITY


def teaches(face: Face) -> bool:
    """Whether a face a person named is clear enough to be used for matching."""
    return face.quality >= min_quality()


def _check_same_owner(face: Face, subject: Subject | None) -> None:
    if subject is not None and subject.owner_id != face.owner_id:
        raise Refusal("This person belongs to someone else.", "foreign_subject")


def track_of(face: Face) -> list[Face]:
    """The faces a decision about ``face`` covers: its whole appearance (a video track, whose
    faces are one person), or itself. ``face`` comes first."""
    if not face.appearance_id:
        return [face]
    return [face, *Face.objects.filter(appearance_id=face.appearance_id).exclude(pk=face.pk)]


def _teacher(faces: list[Face]) -> Face:
    """The one face of a track that teaches recognition: its appearance's best face."""
    best_id = faces[0].appearance.best_face_id if faces[0].appearance_id else None
    return next((f for f in faces if f.pk == best_id), faces[0])


def _confirm(faces: list[Face], subject: Subject, now) -> None:
    """These faces are ``subject``, on a person's word; the clear best one teaches (saved)."""
    teacher = _teacher(faces)
    for face in faces:
        face.subject = subject
        face.decided_by = Decider.HUMAN
        face.decided_at = now
        face.dismissed = False
        face.match_distance = None
        face.is_example = face is teacher and teaches(face)
    update_rows(faces, CONFIRM_FIELDS)


CONFIRM_FIELDS = ["subject", "decided_by", "decided_at", "dismissed", "match_distance", "is_example"]


def name_face(face: Face, subject: Subject) -> Face:
    """"This is ``subject``" (a video face: its whole track). A "not this person" for that
    person is withdrawn, and the face teaches at once: the owner's automatic unknown faces it
    now recognises become that person."""
    _check_same_owner(face, subject)
    with transaction.atomic():
        faces = track_of(face)
        _confirm(faces, subject, timezone.now())
        FaceRejection.objects.filter(face__in=faces, subject=subject).delete()
        teacher = _teacher(faces)
        if teacher.is_example and subject.is_named:
            recognise_alike(teacher)
    send_people_changed(face.owner_id)
    return face


NEAREST_TO_TEACH = 200  # stored faces looked at when a newly named face teaches
TEACHING_EXAMPLES = 20  # a cluster just named teaches from its clearest faces


def recognise_alike(example: Face) -> int:
    """Match the owner's stored automatic faces that look like ``example`` (unknown, or in a
    person without a name) again, now that it teaches its person: those whose best match is
    that person join them (with their tracks). Returns how many did. People without a name
    left empty go."""
    near = search.similar_faces(example.owner_id, example.embedding, limit=NEAREST_TO_TEACH,
                                max_distance=search.default_threshold(), exclude_id=example.pk)
    candidates = [f for f in near if f.decided_by == Decider.AUTO and f.subject_id != example.subject_id]
    unnamed = set(Subject.objects.unnamed().filter(pk__in={f.subject_id for f in candidates if f.subject_id})
                  .values_list("pk", flat=True))
    # Not those recognised as another named person (matching decided that), and a track once.
    candidates = [f for f in candidates if f.subject_id is None or f.subject_id in unnamed]
    tracks = list({f.appearance_id: f for f in candidates if f.appearance_id}.values())
    singles = [f for f in candidates if not f.appearance_id]
    joined, emptied = 0, set()
    # Tracks are matched one at a time, nearest first: a track that joins the person rules them
    # out for the other tracks on screen at the same moments.
    for face, match in itertools.chain(zip(singles, best_matches(singles)), ((f, best_match(f)) for f in tracks)):
        if match is not None and match.subject_id == example.subject_id:
            emptied.add(face.subject_id)
            joined += _assign_auto(track_of(face) if face.appearance_id else [face], match.subject_id,
                                   match.distance)
    Subject.objects.filter(pk__in=emptied - {None}, name="", faces__isnull=True).delete()
    return joined


def _assign_auto(faces: list[Face], subject_id: int | None, distance: float | None) -> int:
    """The automatic, shown faces among ``faces`` get this person (a match, or clustering's)."""
    auto = [f for f in faces if f.decided_by == Decider.AUTO and not f.dismissed]
    for face in auto:
        face.subject_id, face.match_distance = subject_id, distance
    update_rows(auto, ["subject", "match_distance"])
    return len(auto)


def say_who(face: Face, subject: Subject | None) -> Face:
    """A person's answer to "who is this?": one of their people, or None for "I don't know"."""
    return mark_unknown(face) if subject is None else name_face(face, subject)


def mark_unknown(face: Face) -> Face:
    """"I don't know who this is." Its person, if any, gets a "not this person" too."""
    with transaction.atomic():
        faces = track_of(face)
        FaceRejection.objects.bulk_create(
            [FaceRejection(face=f, subject_id=f.subject_id) for f in faces if f.subject_id], ignore_conflicts=True)
        now = timezone.now()
        for f in faces:
            f.subject, f.decided_by, f.decided_at, f.match_distance, f.is_example = None, Decider.HUMAN, now, None, False
        update_rows(faces, ["subject", "decided_by", "decided_at", "match_distance", "is_example"])
    send_people_changed(face.owner_id)
    return face


def reject_face(face: Face, subject: Subject | None = None) -> Face:
    """"Not this person" (default: the face's current person). The face (its track) is matched
    again without that person, then clustered, else left unknown."""
    subject = subject or face.subject
    if subject is None:
        raise Refusal("This face is nobody's yet: there is no person to take it away from.", "no_subject")
    _check_same_owner(face, subject)
    with transaction.atomic():
        faces = track_of(face)
        FaceRejection.objects.bulk_create([FaceRejection(face=f, subject=subject) for f in faces],
                                          ignore_conflicts=True)
        if face.subject_id == subject.pk:
            _release([f for f in faces if f.subject_id == subject.pk])
            reassign(face)
    send_people_changed(face.owner_id)
    return face


def dismiss_face(face: Face) -> Face:
    """"Not a face" (a video face: its whole track): hidden, and never matched or clustered
    again, re-runs included."""
    with transaction.atomic():
        faces = track_of(face)
        now = timezone.now()
        for f in faces:
            f.subject, f.dismissed, f.is_example, f.match_distance = None, True, False, None
            f.decided_by, f.decided_at = Decider.HUMAN, now
        update_rows(faces, ["subject", "dismissed", "is_example", "match_distance", "decided_by", "decided_at"])
    send_people_changed(face.owner_id)
    return face


def restore_face(face: Face) -> Face:
    """Undo "not a face": the face (its track) is matched and clustered like a new one."""
    with transaction.atomic():
        _release(track_of(face))
        reassign(face)
    send_people_changed(face.owner_id)
    return face


def _release(faces: list[Face]) -> None:
    """Back to automatic unknown faces (saved)."""
    for face in faces:
        face.subject, face.is_example, face.match_distance, face.dismissed = None, False, None, False
        face.decided_by, face.decided_at = Decider.AUTO, None
    update_rows(faces, ["subject", "is_example", "match_distance", "decided_by", "decided_at", "dismissed"])


def best_match(face: Face) -> search.Candidate | None:
    """Who one stored face is by matching (a video face: its track, by the vote of its faces),
    leaving out the people it was rejected from and the people already in its picture."""
    from recognition import face_results

    if not face.appearance_id:
        return best_matches([face])[0]
    shown = [f for f in track_of(face) if not f.dismissed]
    excluded = set(FaceRejection.objects.filter(face__in=shown).values_list("subject_id", flat=True))
    # One person is never two tracks on screen at once: not someone another track shows meanwhile.
    times = [f.timestamp for f in shown if f.timestamp is not None]
    if times:
        excluded |= set(
            Face.objects.filter(asset_id=face.asset_id, dismissed=False, subject__isnull=False,
                                timestamp__gte=min(times), timestamp__lte=max(times))
            .exclude(appearance_id=face.appearance_id).values_list("subject_id", flat=True)
        )
    embeddings = np.stack([np.asarray(f.embedding, dtype=np.float32) for f in shown])
    per_face = dict(zip((f.pk for f in shown), search.nearest_subjects(face.owner_id, embeddings)))
    votes = face_results.track_votes(shown, per_face, excluded)
    return votes[0] if votes else None


def best_matches(faces: list[Face]) -> list[search.Candidate | None]:
    """``best_match`` for stored photo faces of one owner, in three queries however many:
    never a person a face was rejected from, nor one already in its picture, nor one person
    for two of these faces in one picture."""
    if not faces:
        return []
    pks = [f.pk for f in faces]
    excluded: dict[int, set[int]] = {}
    for face_id, subject_id in FaceRejection.objects.filter(face_id__in=pks).values_list("face_id", "subject_id"):
        excluded.setdefault(face_id, set()).add(subject_id)
    pictures = {f.frame_key for f in faces}
    others = Face.objects.filter(asset_id__in={asset for asset, _ in pictures}, dismissed=False,
                                 subject__isnull=False).exclude(pk__in=pks)
    taken = {(picture, subject_id)
             for asset_id, frame_index, subject_id in others.values_list("asset_id", "frame_index", "subject_id")
             if (picture := (asset_id, -1 if frame_index is None else frame_index)) in pictures}
    embeddings = np.stack([np.asarray(f.embedding, dtype=np.float32) for f in faces])
    matches, _ = search.identify(faces[0].owner_id, embeddings, groups=[f.frame_key for f in faces],
                                 excluded=[excluded.get(f.pk, set()) for f in faces], taken=taken)
    return matches


def reassign(face: Face) -> None:
    """Match one automatic unknown face (its track) against the owner's people; failing
    that, try clustering (by the track's best face, which the track then follows)."""
    from recognition import face_results
    from recognition.people import clustering

    match = best_match(face)
    if match is not None:
        _assign_auto(track_of(face), match.subject_id, match.distance)
        return
    teacher = _teacher(track_of(face))
    clustering.cluster_new_faces(face.owner_id, [teacher.pk])
    if face.appearance_id:
        face_results.follow_tracks(face.asset)


# --- people ---------------------------------------------------------------------------------


def _named_elsewhere(owner_id: int, name: str, exclude_pk: int | None = None) -> Subject | None:
    others = Subject.objects.filter(owner_id=owner_id, name__iexact=name)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    return others.first()


def clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Refusal("A person needs a name.", "name_required")
    return name


def create_person(owner, name: str, face: Face | None = None, notes: str = "") -> Subject:
    """A new named person; with ``face``, that face is named as them at once ("New person…")."""
    name = clean_name(name)
    if (existing := _named_elsewhere(owner.pk, name)) is not None:
        raise NameTaken(existing)
    if face is not None and face.owner_id != owner.pk:
        raise Refusal("This face belongs to someone else's photo.", "foreign_face")
    try:
        with transaction.atomic():
            subject = Subject.objects.create(owner=owner, name=name, notes=notes)
            if face is not None:
                name_face(face, subject)
    except IntegrityError:  # the same name, created a moment ago by another request
        raise NameTaken(_named_elsewhere(owner.pk, name)) from None
    send_people_changed(owner.pk)
    return subject


def rename_person(subject: Subject, name: str) -> Subject:
    """Give a person a (new) name. Naming a person without one (a cluster) is a person saying
    "these faces are X": its faces become confirmed, and the clear ones teach recognition."""
    name = clean_name(name)
    if (existing := _named_elsewhere(subject.owner_id, name, exclude_pk=subject.pk)) is not None:
        raise NameTaken(existing)
    try:
        with transaction.atomic():
            was_named = subject.is_named
            subject.name = name
            subject.save(update_fields=["name"])
            if not was_named:
                _confirm_all(subject.faces.filter(decided_by=Decider.AUTO, dismissed=False), subject)
                for example in subject.faces.examples().order_by("-quality", "id")[:TEACHING_EXAMPLES]:
                    recognise_alike(example)
    except IntegrityError:
        raise NameTaken(_named_elsewhere(subject.owner_id, name, exclude_pk=subject.pk)) from None
    send_people_changed(subject.owner_id)
    return subject


def _confirm_all(faces, subject: Subject) -> int:
    """A person's word for these faces as a group; the clear ones teach, one per video track."""
    now = timezone.now()
    pks = list(faces.values_list("pk", flat=True))
    moved = Face.objects.filter(pk__in=pks).update(subject=subject, decided_by=Decider.HUMAN, decided_at=now,
                                                   match_distance=None, is_example=False)
    teachers = Face.objects.filter(pk__in=pks, quality__gte=min_quality()).filter(
        Q(appearance__isnull=True) | Q(appearance__best_face=F("pk")))
    teachers.update(is_example=True)
    return moved


@dataclass(frozen=True)
class MergeResult:
    target: Subject
    merged: list[str]  # names of the people merged in
    faces_moved: int
    faces_left_unknown: int  # faces that had said "not <target>"


def merge_people(target: Subject, sources: list[Subject]) -> MergeResult:
    """Merge ``sources`` into ``target``: their faces, examples and "not this person" feedback
    move; the sources are deleted. ``target`` keeps its name, or takes the first source's when
    it has none. A face that had said "not <target>" stays out (unknown)."""
    sources = [s for s in sources if s.pk != target.pk]
    if not sources:
        raise Refusal("Choose at least one other person to merge.", "nothing_to_merge")
    if any(s.owner_id != target.owner_id for s in sources):
        raise Refusal("You can only merge your own people.", "foreign_subject")
    moved = left_out = 0
    merged_names = [s.display_name for s in sources]
    with transaction.atomic():
        target = Subject.objects.select_for_update().get(pk=target.pk)
        inherit_name = "" if target.is_named else next((s.name for s in sources if s.is_named), "")
        ids = [s.pk for s in sources]
        refusing = Face.objects.filter(subject_id__in=ids, rejections__subject=target)
        left_out = refusing.update(subject=None, is_example=False, match_distance=None,
                                   decided_by=Decider.AUTO, decided_at=None)
        faces = Face.objects.filter(subject_id__in=ids)
        # A person saying "B is A" confirms the faces of an unnamed B, as naming it would.
        unnamed_ids = [s.pk for s in sources if not s.is_named]
        moved = _confirm_all(faces.filter(subject_id__in=unnamed_ids, decided_by=Decider.AUTO), target)
        moved += faces.update(subject=target)
        FaceRejection.objects.filter(subject_id__in=ids, face__rejections__subject=target).delete()
        FaceRejection.objects.filter(subject_id__in=ids).update(subject=target)
        Subject.objects.filter(pk__in=ids).delete()
        if inherit_name:
            target.name = inherit_name
            target.save(update_fields=["name"])
    send_people_changed(target.owner_id)
    return MergeResult(target, merged_names, moved, left_out)


def set_hidden(subject: Subject, hidden: bool) -> Subject:
    subject.hidden = hidden
    subject.save(update_fields=["hidden"])
    send_people_changed(subject.owner_id)
    return subject


def delete_person(subject: Subject) -> int:
    """Delete the person; their faces stay, as unknown (and may be clustered again). Returns
    how many faces became unknown."""
    with transaction.atomic():
        released = subject.faces.update(subject=None, is_example=False, match_distance=None,
                                        decided_by=Decider.AUTO, decided_at=None)
        subject.delete()
    send_people_changed(subject.owner_id)
    return released


@dataclass(frozen=True)
class Erasure:
    """What erasing a person removes (or removed)."""

    name: str
    faces: int
    examples: int
    photos: int  # photos and videos they appeared in (the files themselves stay)

    def describe(self) -> str:
        return (f"{self.faces} face{'s' * (self.faces != 1)} (with their embeddings) in {self.photos} "
                f"photo{'s' * (self.photos != 1)} or video{'s' * (self.photos != 1)}, "
                f"{self.examples} of them used for matching")


def erasure_preview(subject: Subject) -> Erasure:
    counts = subject.faces.aggregate(
        faces=Count("id"), examples=Count("id", filter=Q(is_example=True)), photos=Count("asset", distinct=True),
    )
    return Erasure(subject.display_name, **counts)


def erase_person(subject: Subject) -> Erasure:
    """Biometric erasure: every face, embedding, crop and example of the person is deleted,
    and the places they were found are remembered (boxes only) so that re-running those
    photos does not find and store them again. The photos themselves stay."""
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        erased = erasure_preview(subject)
        ErasedFace.objects.bulk_create(
            ErasedFace(asset_id=asset_id, frame_index=frame_index, box=box)
            for asset_id, frame_index, box in subject.faces.values_list("asset_id", "frame_index", "box")
        )
        subject.faces.all().delete()  # rejections go with them
        subject.delete()
    send_people_changed(subject.owner_id)
    return erased
