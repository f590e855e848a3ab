"""The reports recomputed the slow, obvious way: every row loaded into Python and counted in
loops, from the definitions in ``analysis.reports`` (not from its SQL). The report tests
compare these numbers with what the API, the pages and the command answer."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.utils import timezone

from media.models import Asset
from recognition.models import Appearance, Face, ImageEmbedding, Job, Subject

STAGES = ("uploading", "queued", "detecting", "enhancing", "recognizing")


@dataclass
class Ask:
    owner_id: int | None = None
    since: date | None = None
    until: date | None = None
    kind: str | None = None
    person: int | None = None


def _zone():
    return ZoneInfo(settings.TIME_ZONE)


def _day(moment: datetime) -> date:
    return moment.astimezone(_zone()).date()


def _in_period(moment: datetime, ask: Ask) -> bool:
    return (ask.since is None or _day(moment) >= ask.since) and (ask.until is None or _day(moment) <= ask.until)


def _assets(ask: Ask, *, timed: bool = True, person: bool = True) -> dict[int, Asset]:
    with_person = set(Face.objects.filter(subject_id=ask.person).values_list("asset_id", flat=True))
    chosen = {}
    for asset in Asset.objects.all():
        if ask.owner_id is not None and asset.owner_id != ask.owner_id:
            continue
        if ask.kind and asset.kind != ask.kind:
            continue
        if timed and not _in_period(asset.created_at, ask):
            continue
        if person and ask.person is not None and asset.pk not in with_person:
            continue
        chosen[asset.pk] = asset
    return chosen


def _faces(ask: Ask) -> list[Face]:
    assets = _assets(ask, person=False)
    return [face for face in Face.objects.select_related("subject")
            if face.asset_id in assets and (ask.person is None or face.subject_id == ask.person)]


def _is_recognised(face: Face) -> bool:
    return not face.dismissed and face.subject is not None and face.subject.name != ""


def _finished_jobs(ask: Ask, stages=("completed", "failed")) -> list[Job]:
    assets = _assets(ask, timed=False)
    return [job for job in Job.objects.all()
            if job.stage in stages and job.asset_id in assets and _in_period(job.finished_at, ask)]


def daily(ask: Ask) -> list[dict]:
    per_day: dict[date, Counter] = defaultdict(Counter)
    assets = _assets(ask)
    for asset in assets.values():
        per_day[_day(asset.created_at)]["photos" if asset.kind == "image" else "videos"] += 1
    uploads = _assets(ask, person=False)
    for face in _faces(ask):
        counts = per_day[_day(uploads[face.asset_id].created_at)]
        if face.dismissed:
            counts["dismissed_faces"] += 1
        else:
            counts["faces"] += 1
            counts["recognised_faces" if _is_recognised(face) else "unknown_faces"] += 1
    for job in _finished_jobs(ask, ("failed",)):
        per_day[_day(job.finished_at)]["failed_jobs"] += 1
    active = [day for day, counts in per_day.items() if counts["photos"] + counts["videos"] + counts["failed_jobs"]]
    first = ask.since or (min(active) if active else None)
    last = ask.until or (max(active) if active else None)
    rows = []
    day = first
    while first is not None and last is not None and day <= last:
        counts = per_day.get(day, Counter())
        rows.append({"day": day, **{name: counts[name] for name in (
            "photos", "videos", "faces", "recognised_faces", "unknown_faces", "dismissed_faces", "failed_jobs")}})
        day += timedelta(days=1)
    return rows


def people(ask: Ask) -> list[dict]:
    assets = _assets(ask, person=False)
    seen: dict[int, dict] = {}
    for face in _faces(ask):
        if face.dismissed or face.subject_id is None:
            continue
        entry = seen.setdefault(face.subject_id, {"assets": set(), "faces": 0})
        entry["assets"].add(face.asset_id)
        entry["faces"] += 1
    tracks = Counter(
        track.best_face.subject_id for track in Appearance.objects.select_related("best_face")
        if track.asset_id in assets and track.best_face is not None and track.best_face.subject_id is not None
    )
    rows = []
    for subject_id, entry in seen.items():
        subject = Subject.objects.select_related("owner").get(pk=subject_id)
        uploads = [assets[pk] for pk in entry["assets"]]
        rows.append({
            "person": subject.pk, "name": subject.name, "named": subject.name != "", "hidden": subject.hidden,
            "owner": subject.owner.email,
            "photos": sum(1 for a in uploads if a.kind == "image"), "videos": sum(1 for a in uploads if a.kind == "video"),
            "faces": entry["faces"], "appearances": tracks[subject_id],
            "first_seen": min(a.created_at for a in uploads), "last_seen": max(a.created_at for a in uploads),
        })
    return sorted(rows, key=lambda row: (-row["faces"], row["person"]))


def _started(job: Job) -> datetime:
    for stage in ("uploading", "queued"):
        if stage in job.timings:
            return datetime.fromisoformat(job.timings[stage]["started_at"])
    return job.created_at


def latency(ask: Ask) -> list[dict]:
    jobs = _finished_jobs(ask)
    if not jobs:
        return []
    durations: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "end_to_end")}
    for job in jobs:
        for stage in STAGES:
            if "seconds" in job.timings.get(stage, {}):
                durations[stage].append(job.timings[stage]["seconds"])
        if job.stage == "completed":
            durations["end_to_end"].append((job.finished_at - _started(job)).total_seconds())
    start = datetime.combine(ask.since, time.min, tzinfo=_zone()) if ask.since else min(map(_started, jobs))
    if ask.until:
        end = min(datetime.combine(ask.until + timedelta(days=1), time.min, tzinfo=_zone()), timezone.now())
    else:
        end = max(job.finished_at for job in jobs)
    hours = max((end - start).total_seconds() / 3600, 1.0)
    return [
        {"stage": stage, "jobs": len(values), "p50_seconds": float(np.percentile(values, 50)),
         "p95_seconds": float(np.percentile(values, 95)), "max_seconds": max(values),
         "jobs_per_hour": len(values) / hours}
        for stage, values in durations.items() if values
    ]


def failures(ask: Ask) -> list[dict]:
    by_reason: dict[str, list[Job]] = defaultdict(list)
    for job in _finished_jobs(ask, ("failed",)):
        by_reason[job.error_code or "unknown"].append(job)
    rows = []
    for reason, jobs in by_reason.items():
        latest = max(jobs, key=lambda job: (job.finished_at, job.pk))
        rows.append({"reason": reason, "jobs": len(jobs), "last_seen": latest.finished_at,
                     "example_asset": latest.asset_id, "example_name": latest.asset.original_name,
                     "example_error": latest.error})
    return sorted(rows, key=lambda row: (-row["jobs"], row["reason"]))


def summary(ask: Ask) -> list[dict]:
    assets = _assets(ask)
    faces = _faces(ask)
    shown = [face for face in faces if not face.dismissed]
    recognised = [face for face in shown if _is_recognised(face)]
    jobs = _finished_jobs(ask)
    versions = Counter(("face", face.model_version) for face in shown)
    versions.update(("image", e.model_version) for e in ImageEmbedding.objects.filter(asset_id__in=list(assets)))
    return [{
        "photos": sum(1 for a in assets.values() if a.kind == "image"),
        "videos": sum(1 for a in assets.values() if a.kind == "video"),
        "storage_bytes": sum(a.size_bytes for a in assets.values()),
        "faces": len(shown), "recognised_faces": len(recognised), "unknown_faces": len(shown) - len(recognised),
        "dismissed_faces": len(faces) - len(shown),
        "recognised_share": len(recognised) / len(shown) if shown else None,
        "unknown_share": (len(shown) - len(recognised)) / len(shown) if shown else None,
        "people": len({f.subject_id for f in recognised}),
        "unnamed_people": len({f.subject_id for f in shown if f.subject is not None and f.subject.name == ""}),
        "finished_jobs": len(jobs), "failed_jobs": sum(1 for job in jobs if job.stage == "failed"),
        "model_versions": sorted(
            ({"model": model, "version": version, "count": count} for (model, version), count in versions.items()),
            key=lambda v: (v["model"], -v["count"], v["version"])),
    }]


REPORTS = {"daily": daily, "people": people, "latency": latency, "failures": failures, "summary": summary}
