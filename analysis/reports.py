"""The five reports: what each row is, what each column means, and how it is computed
(``queries``). The API, the pages, the CSV export and ``manage.py report`` all read this list,
so a report is defined once.

Definitions every report shares:

- **faces** are the faces shown to the user: detections dismissed as "not a face" are not
  faces (they are counted apart, as *dismissed faces*).
- A **recognised face** belongs to a person with a name; an **unknown face** belongs to nobody
  or to a person without a name (a cluster Sightline formed but nobody named yet).
  ``faces = recognised faces + unknown faces``.
- Photos, videos and their faces count on the day the file was **uploaded** (the asset's
  ``created_at``): a re-run does not move them. Jobs count when they **finished**.
- Days are calendar days in ``settings.TIME_ZONE`` (UTC unless configured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from analysis import queries
from analysis.filters import ReportFilters


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    kind: str = "int"  # int, float, seconds, share, bytes, date, datetime, text, bool, list
    help: str = ""


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    query: Callable[[ReportFilters], list[dict]]
    in_words: str = ""  # the pages' description: for people, without column names

    def run(self, filters: ReportFilters) -> list[dict]:
        return self.query(filters)

    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


PEOPLE_COLUMNS = (
    Column("person", "Person id"),
    Column("name", "Name", "text", "Empty for a person Sightline grouped but nobody named yet."),
    Column("named", "Named", "bool"),
    Column("hidden", "Hidden", "bool", "Left out of the people gallery."),
    Column("owner", "Owner", "text", "The owner's email."),
    Column("photos", "Photos", "int", "Photos the person appears in."),
    Column("videos", "Videos", "int", "Videos the person appears in."),
    Column("faces", "Faces", "int", "The person's faces (in videos: one per sampled frame)."),
    Column("appearances", "Appearances", "int",
           "Video appearances: face tracks whose best face is this person's (as the video page shows them)."),
    Column("first_seen", "First seen", "datetime", "Upload time of the first photo or video they are in."),
    Column("last_seen", "Last seen", "datetime", "Upload time of the latest photo or video they are in."),
)


def _summary(filters: ReportFilters) -> list[dict]:
    return [queries.summary(filters)]


DAILY = Report(
    "daily", "Per day",
    "One row per day, from the first day with anything to the last (or `since` to `until`), days without "
    "anything as zeros. Photos, videos and their faces count on the day they were uploaded; failed jobs on the "
    "day they failed.",
    (
        Column("day", "Day", "date"),
        Column("photos", "Photos", "int", "Photos uploaded."),
        Column("videos", "Videos", "int", "Videos uploaded."),
        Column("faces", "Faces", "int", "Faces in them, dismissed ones left out."),
        Column("recognised_faces", "Recognised", "int", "Faces of a named person."),
        Column("unknown_faces", "Unknown", "int", "Faces of nobody, or of a person without a name."),
        Column("dismissed_faces", "Dismissed", "int", 'Detections dismissed as "not a face".'),
        Column("failed_jobs", "Failed jobs", "int", "Processing jobs that failed that day."),
    ),
    queries.daily,
    "Each day's uploads and what was found in them. Photos, videos and their faces count on the day they were "
    "uploaded; failed jobs on the day they failed.",
)

PEOPLE = Report(
    "people", "Per person",
    "One row per person (named, or grouped by Sightline without a name) with at least one face in the selected "
    "photos and videos, most faces first. `since`/`until` select by upload time.",
    PEOPLE_COLUMNS,
    queries.people,
    "Everyone with a face in the selected photos and videos, named or grouped by Sightline, most faces first.",
)

LATENCY = Report(
    "latency", "Processing latency",
    "One row per pipeline stage (`uploading`, `queued`, `detecting`, `enhancing`, `recognizing`) from the "
    "stage timings of jobs that finished in the period (failed ones included, for the stages they went "
    "through), then `end_to_end`: completed jobs from the start of the upload (of `queued` for a re-run) to "
    "completion, the wait in the queue included. `jobs_per_hour`: the row's jobs divided by the period "
    "(`since` to `until`, else first start to last finish; one hour at least).",
    (
        Column("stage", "Stage", "text"),
        Column("jobs", "Jobs", "int", "Finished jobs with this stage timed."),
        Column("p50_seconds", "p50 (s)", "seconds", "Median, interpolated (percentile_cont)."),
        Column("p95_seconds", "p95 (s)", "seconds", "95th percentile, interpolated (percentile_cont)."),
        Column("max_seconds", "Max (s)", "seconds"),
        Column("jobs_per_hour", "Jobs per hour", "float"),
    ),
    queries.latency,
    "How long each step of processing took for the jobs that finished in the period, and the whole way from "
    "upload to result, waiting for a worker included. p50 is the typical time; p95 the time 19 jobs in 20 "
    "stayed under.",
)

FAILURES = Report(
    "failures", "Failures",
    "One row per reason code of failed jobs (`unknown` when a job has none), most frequent first, by when the "
    "job failed, with the latest failure's asset and message as an example.",
    (
        Column("reason", "Reason", "text"),
        Column("jobs", "Failed jobs", "int"),
        Column("last_seen", "Last seen", "datetime"),
        Column("example_asset", "Example asset id", "int"),
        Column("example_name", "Example asset", "text"),
        Column("example_error", "Message", "text"),
    ),
    queries.failures,
    "Why processing failed, most frequent reason first, with the latest file that failed for each reason.",
)

SUMMARY = Report(
    "summary", "Summary",
    "The totals of the selection in one row; the daily report's columns add up to them. Shares are of faces "
    "(null without faces). `storage_bytes`: the stored originals' sizes. `people`/`unnamed_people`: persons "
    "with a face in the selection. `model_versions`: the models that computed the faces and image embeddings "
    "in the selection, with how many rows each.",
    (
        Column("photos", "Photos"),
        Column("videos", "Videos"),
        Column("storage_bytes", "Storage", "bytes", "Sum of the original files' sizes."),
        Column("faces", "Faces"),
        Column("recognised_faces", "Recognised faces"),
        Column("unknown_faces", "Unknown faces"),
        Column("dismissed_faces", "Dismissed faces"),
        Column("recognised_share", "Recognised share", "share", "Recognised faces / faces."),
        Column("unknown_share", "Unknown share", "share", "Unknown faces / faces."),
        Column("people", "People", "int", "Named people with a face in the selection."),
        Column("unnamed_people", "Unnamed people", "int", "People without a name with a face in the selection."),
        Column("finished_jobs", "Finished jobs", "int", "Jobs that completed or failed in the period."),
        Column("failed_jobs", "Failed jobs"),
        Column("model_versions", "Model versions", "list", "[{model: face|image, version, count}]"),
    ),
    _summary,
    "The totals of the selection: what was uploaded, how much space it takes, and how many of the faces found "
    "belong to someone you named.",
)

REPORTS: dict[str, Report] = {report.name: report for report in (DAILY, PEOPLE, LATENCY, FAILURES, SUMMARY)}


def get(name: str) -> Report:
    from config.refusals import NotFound

    try:
        return REPORTS[name]
    except KeyError:
        raise NotFound(f"There is no report {name!r}; the reports are {', '.join(REPORTS)}.") from None
