"""Generated libraries for the report tests: assets, jobs, faces and people written straight to
the database (no files, no worker), random but reproducible from a seed, with every case the
reports must count: photos and videos, named, unnamed and no person, dismissed faces, re-runs,
failed jobs with and without a reason, jobs still running, two face model versions, video
appearances (one of them with a dismissed best face, which counts for nobody)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from media.models import Asset
from recognition.models import Appearance, Face, ImageEmbedding, Job, Subject

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 12
REASONS = ("decode_error", "timeout", "")


@dataclass
class Library:
    owner: object
    named: list[Subject]
    unnamed: list[Subject]
    assets: list[Asset]


def _timings(rng: random.Random, start: datetime, uploaded: bool, stages: list[str]) -> tuple[dict, datetime]:
    """Stage timings as ``Job.advance`` writes them: contiguous stages, seconds rounded to 4
    places; returns them and the moment the last stage ended."""
    timings, now = {}, start
    for stage in (["uploading"] if uploaded else []) + stages:
        seconds = rng.uniform(0.05, 30.0 if stage == "queued" else 4.0)
        ended = now + timedelta(seconds=seconds)
        timings[stage] = {"started_at": now.isoformat(), "ended_at": ended.isoformat(),
                          "seconds": round((ended - now).total_seconds(), 4)}
        now = ended
    return timings, now


def generate(owner, seed: int, assets: int = 36) -> Library:
    rng = random.Random(seed)
    named = Subject.objects.bulk_create(
        [Subject(owner=owner, name=f"Person {seed}-{n}", hidden=(n == 3)) for n in range(4)])
    unnamed = Subject.objects.bulk_create([Subject(owner=owner, name="") for _ in range(3)])

    rows = []
    for n in range(assets):
        kind = Asset.Kind.VIDEO if rng.random() < 0.25 else Asset.Kind.IMAGE
        rows.append(Asset(owner=owner, kind=kind, original_name=f"{seed}-{n}.{'mp4' if kind == 'video' else 'jpg'}",
                          file=f"generated/{seed}/{n}", sha256=f"{seed:08d}{n:056d}",
                          size_bytes=rng.randrange(10_000, 5_000_000), content_type="image/jpeg", width=640,
                          height=480, duration_seconds=12.0 if kind == "video" else None))
    library_assets = Asset.objects.bulk_create(rows)
    for n, asset in enumerate(library_assets):
        # Day boundaries get their own cases: the first asset exactly at midnight, one just before.
        if n == 0:
            asset.created_at = START + timedelta(days=2)
        elif n == 1:
            asset.created_at = START + timedelta(days=2) - timedelta(microseconds=1)
        else:
            asset.created_at = START + timedelta(days=rng.randrange(DAYS), seconds=rng.randrange(86_400))
    Asset.objects.bulk_update(library_assets, ["created_at"])

    jobs, faces, embeddings = [], [], []
    for asset in library_assets:
        runs = 2 if rng.random() < 0.3 else 1
        begin = asset.created_at
        for run in range(runs):
            outcome = rng.choices(["completed", "failed", "running"], weights=[70, 22, 8])[0] if run == runs - 1 \
                else rng.choice(["completed", "failed"])
            stages = {"completed": ["queued", "detecting", "enhancing", "recognizing"],
                      "failed": ["queued", "detecting"][: rng.randrange(1, 3)],
                      "running": ["queued", "detecting"]}[outcome]
            timings, ended = _timings(rng, begin, uploaded=(run == 0), stages=stages)
            if outcome == "running":
                timings["detecting"].pop("ended_at")
                timings["detecting"].pop("seconds")
            created = begin + timedelta(seconds=timings["uploading"]["seconds"]) if run == 0 else begin
            reason = rng.choice(REASONS) if outcome == "failed" else ""
            jobs.append(Job(asset=asset, stage={"running": "detecting"}.get(outcome, outcome), timings=timings,
                            error="It went wrong." if outcome == "failed" else "", error_code=reason,
                            created_at=created, finished_at=None if outcome == "running" else ended))
            begin = ended + timedelta(hours=rng.uniform(1, 72))  # a re-run, later
        for frame in range(rng.randrange(0, 6)):
            who = rng.choices(["named", "unnamed", "nobody", "dismissed"], weights=[45, 25, 20, 10])[0]
            subject = {"named": lambda: rng.choice(named), "unnamed": lambda: rng.choice(unnamed)}.get(
                who, lambda: None)()
            faces.append(Face(
                asset=asset, owner=owner, box=[1, 2, 30, 40], landmarks=[[5, 5]] * 5, score=0.99,
                quality=rng.random(), embedding=np.random.default_rng(rng.randrange(10**6)).normal(size=128),
                model_version=rng.choice(["face-v1", "face-v1", "face-v2"]), subject=subject,
                dismissed=(who == "dismissed"), decided_by="human" if who == "dismissed" else "auto",
                frame_index=frame if asset.is_video else None, timestamp=float(frame) if asset.is_video else None,
            ))
        if not asset.is_video:
            embeddings.append(ImageEmbedding(asset=asset, embedding=np.ones(1280), model_version="image-v1"))
    Job.objects.bulk_create(jobs)
    Face.objects.bulk_create(faces)
    ImageEmbedding.objects.bulk_create(embeddings)
    _tracks(owner, faces)
    return Library(owner, named, unnamed, library_assets)


def _tracks(owner, faces: list[Face]) -> None:
    """Video faces tracked as recognition does: one appearance per person (or per unknown or
    dismissed lot) in each video, its best face the clearest, its faces pointing at it."""
    groups: dict[tuple, list[Face]] = {}
    for face in faces:
        if face.frame_index is not None:
            groups.setdefault((face.asset_id, face.subject_id, face.dismissed), []).append(face)
    for (asset_id, _, _), members in groups.items():
        best = max(members, key=lambda face: face.quality)
        track = Appearance.objects.create(
            asset_id=asset_id, owner=owner, start_seconds=min(f.timestamp for f in members),
            end_seconds=max(f.timestamp for f in members), best_face=best, embedding=best.embedding,
            face_count=len(members))
        Face.objects.filter(pk__in=[face.pk for face in members]).update(appearance=track)
