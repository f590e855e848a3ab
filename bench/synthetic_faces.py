"""Synthetic face embeddings spread like real dlib ones, and a fast way to store them.

Fitted to the clearest face of each of the 11 shared gallery photos (our engine's dlib ResNet
port): the descriptors share a large common part (norm about 1.35), people's own parts sit
0.71 to 1.02 apart from each other (median 0.86), and two photos of one person 0.38 to 0.54.
So: face = common + person + variation, with person ~ N(0, s_p² I) where s_p is drawn per
person from [0.045, 0.064], and variation ~ N(0, s_v² I) where s_v is drawn per person from
[0.020, 0.034]. Identities get 1 to 50 faces (a long tail: many people appear once or twice).

``insert_faces`` writes faces with PostgreSQL's COPY, two faces of different people to a
photo where it can, so the one-person-per-picture rule is exercised too.
"""

from __future__ import annotations

import io
import uuid

import numpy as np

DIMENSIONS = 128
COMMON_NORM = 1.35


def synthetic_identities(count: int, seed: int = 0, max_faces: int = 50) -> tuple[np.ndarray, list[int]]:
    """``count`` embeddings (float32) and the person each belongs to."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=DIMENSIONS)
    common *= COMMON_NORM / np.linalg.norm(common)
    embeddings, identities = [], []
    person = 0
    while len(embeddings) < count:
        # Zipf-like sizes: most people appear a few times, some very often.
        faces = int(min(max_faces, max(1, rng.zipf(1.6))))
        own = rng.normal(size=DIMENSIONS) * rng.uniform(0.045, 0.064)
        spread = rng.uniform(0.020, 0.034)
        for _ in range(min(faces, count - len(embeddings))):
            embeddings.append(common + own + rng.normal(size=DIMENSIONS) * spread)
            identities.append(person)
        person += 1
    order = rng.permutation(len(embeddings))
    return np.asarray(embeddings, dtype=np.float32)[order], [identities[i] for i in order]


def photo_slots(identities: list[int], faces_per_photo: int) -> list[tuple[int, int]]:
    """(photo, place in it) for each face: up to ``faces_per_photo`` faces of different people
    per photo, as in real group photos."""
    slots, photo, present = [], 0, set()
    for identity in identities:
        if len(present) == faces_per_photo or identity in present:
            photo, present = photo + 1, set()
        slots.append((photo, len(present)))
        present.add(identity)
    return slots


def insert_faces(owner, embeddings: np.ndarray, identities: list[int], faces_per_photo: int = 2) -> list[int]:
    """Store the embeddings as ``owner``'s automatic unknown faces (photos without files);
    returns the face ids in order."""
    from django.db import connection, transaction
    from django.utils import timezone

    from media.models import Asset
    from recognition.models import Face

    slots = photo_slots(identities, faces_per_photo)
    photos = slots[-1][0] + 1 if slots else 0
    batch = uuid.uuid4().hex[:12]
    assets = Asset.objects.bulk_create(
        [Asset(owner=owner, kind=Asset.Kind.IMAGE, original_name=f"synthetic-{i}.jpg",
               file=f"synthetic/{batch}/{i}.jpg", sha256=f"{batch}{i:052d}", size_bytes=1,
               content_type="image/jpeg", width=640, height=480) for i in range(photos)],
        batch_size=5000,
    )
    now = timezone.now().isoformat()
    buffer = io.StringIO()
    for (photo, slot), embedding in zip(slots, embeddings):
        box = f"[{slot * 100}, 0, {slot * 100 + 90}, 90]"
        vector = "[" + ",".join(f"{v:.6f}" for v in embedding) + "]"
        buffer.write(f"{assets[photo].pk}\t{owner.pk}\t{box}\t[[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]]\t"
                     f"0.99\t0.9\t{vector}\tsynthetic\tauto\tf\tf\t{now}\t\n")
    buffer.seek(0)
    columns = ("asset_id, owner_id, box, landmarks, score, quality, embedding, model_version, decided_by, "
               "dismissed, is_example, created_at, crop")
    with transaction.atomic(), connection.cursor() as cursor:
        first = Face.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with cursor.cursor.copy(f"COPY recognition_face ({columns}) FROM STDIN") as copy:
            while chunk := buffer.read(1 << 20):
                copy.write(chunk)
    return list(Face.objects.filter(owner=owner, pk__gt=first).order_by("pk").values_list("pk", flat=True))
