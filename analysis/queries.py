"""The reports' SQL: every number is aggregated by PostgreSQL (days by ``AT TIME ZONE`` casts,
``percentile_cont``, ``FILTER``), one round trip per report, never a Python loop over rows.

Each function takes ``ReportFilters`` and returns a list of dicts, one per row, keyed by the
report's column names (``reports.REPORTS`` says what each column means).

Filters become SQL conditions on the asset (alias ``a``): every report row is about assets,
their faces or their jobs, so "whose", "what kind" and "with whom in it" are always asked of
the asset. Only constants and ``%s`` placeholders go into the SQL text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from analysis.filters import ReportFilters, report_zone

PIPELINE_STAGES = ("uploading", "queued", "detecting", "enhancing", "recognizing")
END_TO_END = "end_to_end"


@dataclass
class Where:
    """SQL conditions joined with AND, and their parameters in order."""

    conditions: list[str] = field(default_factory=list)
    params: list = field(default_factory=list)

    def add(self, condition: str, *params) -> Where:
        self.conditions.append(condition)
        self.params.extend(params)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions) or "TRUE"


def asset_where(filters: ReportFilters, *, timed: bool = True, person: bool = True) -> Where:
    """Conditions on ``media_asset a``. ``timed``: the period applies to the upload time;
    ``person``: only assets the person appears in."""
    where = Where()
    if filters.owner_id is not None:
        where.add("a.owner_id = %s", filters.owner_id)
    if filters.kind:
        where.add("a.kind = %s", filters.kind)
    if timed and filters.since_at:
        where.add("a.created_at >= %s", filters.since_at)
    if timed and filters.until_before:
        where.add("a.created_at < %s", filters.until_before)
    if person and filters.person_id is not None:
        where.add("EXISTS (SELECT 1 FROM recognition_face pf WHERE pf.asset_id = a.id AND pf.subject_id = %s)",
                  filters.person_id)
    return where


def finished_jobs_where(filters: ReportFilters, stages: tuple[str, ...]) -> Where:
    """Conditions on ``recognition_job j``: jobs that ended in one of ``stages`` within the
    period (a job counts when it finishes), of the selected assets."""
    where = Where().add("j.stage = ANY(%s)", list(stages))
    if filters.since_at:
        where.add("j.finished_at >= %s", filters.since_at)
    if filters.until_before:
        where.add("j.finished_at < %s", filters.until_before)
    return _of_selected_assets(where, "j", asset_where(filters, timed=False))


def faces_where(filters: ReportFilters) -> Where:
    """Conditions on ``recognition_face f``: the faces of the selected assets (the person's
    faces only, with ``person``). Asked of the asset through a semi-join, so the scan stays on
    the narrow report indexes of the face table (``analysis`` migration 0001)."""
    where = Where()
    if filters.person_id is not None:
        where.add("f.subject_id = %s", filters.person_id)
    return _of_selected_assets(where, "f", asset_where(filters, person=False))


def _of_selected_assets(where: Where, alias: str, assets: Where) -> Where:
    if assets.conditions:
        where.add(f"{alias}.asset_id IN (SELECT a.id FROM media_asset a WHERE {assets.sql})", *assets.params)
    return where


# Reports sort and hash up to a few million rows; the default 4MB would spill them to disk.
REPORT_WORK_MEM = "64MB"


def _rows(sql: str, params: list) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _zone() -> str:
    return report_zone().key


def _named_subjects(filters: ReportFilters) -> Where:
    """``SELECT id FROM`` the named people in scope: a face is recognised when its person is one."""
    where = Where().add("s.name <> ''")
    if filters.owner_id is not None:
        where.add("s.owner_id = %s", filters.owner_id)
    return where


# --- daily -----------------------------------------------------------------------------------


def daily(filters: ReportFilters) -> list[dict]:
    """One row per calendar day from the first to the last day (or ``since`` to ``until``),
    days without anything included as zeros so a chart's line does not skip them.

    Faces are counted per asset first (a streaming aggregate over the face index), then per
    day: a million faces become a hundred thousand rows before any join."""
    zone = _zone()
    assets = asset_where(filters)
    faces = faces_where(filters)
    named = _named_subjects(filters)
    failed = finished_jobs_where(filters, ("failed",))
    sql = f"""
        WITH asset_days AS (
            SELECT (a.created_at AT TIME ZONE %s)::date AS day,
                   count(*) FILTER (WHERE a.kind = 'image') AS photos,
                   count(*) FILTER (WHERE a.kind = 'video') AS videos
            FROM media_asset a
            WHERE {assets.sql}
            GROUP BY 1
        ), face_assets AS (
            SELECT f.asset_id,
                   count(*) FILTER (WHERE NOT f.dismissed) AS faces,
                   count(*) FILTER (WHERE NOT f.dismissed AND f.subject_id IN (
                       SELECT s.id FROM recognition_subject s WHERE {named.sql})) AS recognised_faces,
                   count(*) FILTER (WHERE f.dismissed) AS dismissed_faces
            FROM recognition_face f
            WHERE {faces.sql}
            GROUP BY f.asset_id
        ), face_days AS (
            SELECT (a.created_at AT TIME ZONE %s)::date AS day,
                   sum(p.faces) AS faces,
                   sum(p.recognised_faces) AS recognised_faces,
                   sum(p.faces - p.recognised_faces) AS unknown_faces,
                   sum(p.dismissed_faces) AS dismissed_faces
            FROM face_assets p
            JOIN media_asset a ON a.id = p.asset_id
            GROUP BY 1
        ), failed_days AS (
            SELECT (j.finished_at AT TIME ZONE %s)::date AS day, count(*) AS failed_jobs
            FROM recognition_job j
            WHERE {failed.sql}
            GROUP BY 1
        ), bounds AS (
            SELECT coalesce(%s::date, min(day)) AS first_day, coalesce(%s::date, max(day)) AS last_day
            FROM (SELECT day FROM asset_days UNION ALL SELECT day FROM failed_days) AS active
        )
        SELECT series.day::date AS day,
               coalesce(asset_days.photos, 0) AS photos,
               coalesce(asset_days.videos, 0) AS videos,
               coalesce(face_days.faces, 0)::bigint AS faces,
               coalesce(face_days.recognised_faces, 0)::bigint AS recognised_faces,
               coalesce(face_days.unknown_faces, 0)::bigint AS unknown_faces,
               coalesce(face_days.dismissed_faces, 0)::bigint AS dismissed_faces,
               coalesce(failed_days.failed_jobs, 0) AS failed_jobs
        FROM bounds
        CROSS JOIN generate_series(bounds.first_day, bounds.last_day, interval '1 day') AS series(day)
        LEFT JOIN asset_days ON asset_days.day = series.day::date
        LEFT JOIN face_days ON face_days.day = series.day::date
        LEFT JOIN failed_days ON failed_days.day = series.day::date
        ORDER BY 1
    """
    params = [zone, *assets.params, *named.params, *faces.params, zone, zone, *failed.params,
              filters.since, filters.until]
    return _rows(sql, params)


# --- people ----------------------------------------------------------------------------------


def people(filters: ReportFilters) -> list[dict]:
    """One row per person with a face shown in the selected assets, most faces first.

    Faces are grouped per (asset, person) first, in the face index's order (no hashing), then
    joined to their asset once per group, not per face. Appearances (video face tracks) belong
    to the person of their best face, as recognition decides a track's person."""
    where = faces_where(filters).add("f.subject_id IS NOT NULL").add("NOT f.dismissed")
    tracks = _of_selected_assets(Where(), "ap", asset_where(filters, person=False))
    if filters.person_id is not None:
        tracks.add("bf.subject_id = %s", filters.person_id)
    sql = f"""
        WITH per_asset AS (
            SELECT f.asset_id, f.subject_id, count(*) AS faces
            FROM recognition_face f
            WHERE {where.sql}
            GROUP BY f.asset_id, f.subject_id
        ), per_person AS (
            SELECT p.subject_id,
                   count(*) FILTER (WHERE a.kind = 'image') AS photos,
                   count(*) FILTER (WHERE a.kind = 'video') AS videos,
                   sum(p.faces)::bigint AS faces,
                   min(a.created_at) AS first_seen,
                   max(a.created_at) AS last_seen
            FROM per_asset p
            JOIN media_asset a ON a.id = p.asset_id
            GROUP BY 1
        ), appearances AS (
            SELECT bf.subject_id, count(*) AS appearances
            FROM recognition_appearance ap
            JOIN recognition_face bf ON bf.id = ap.best_face_id
            WHERE bf.subject_id IS NOT NULL AND {tracks.sql}  -- a dismissed face has no person
            GROUP BY 1
        )
        SELECT s.id AS person, s.name AS name, (s.name <> '') AS named, s.hidden AS hidden, u.email AS owner,
               pp.photos, pp.videos, pp.faces, coalesce(ap.appearances, 0) AS appearances,
               pp.first_seen, pp.last_seen
        FROM per_person pp
        JOIN recognition_subject s ON s.id = pp.subject_id
        JOIN accounts_user u ON u.id = s.owner_id
        LEFT JOIN appearances ap ON ap.subject_id = pp.subject_id
        ORDER BY pp.faces DESC, s.id
    """
    return _rows(sql, [*where.params, *tracks.params])


# --- latency ---------------------------------------------------------------------------------


def latency(filters: ReportFilters) -> list[dict]:
    """Per pipeline stage, then end to end: how many finished jobs timed it, p50, p95, max
    seconds, and jobs per hour over the period.

    Stage rows read each job's ``timings`` JSON (every finished job, failed ones included, for
    the stages they went through); ``end_to_end`` is completed jobs only, from the start of the
    upload (or of ``queued`` for a re-run) to ``finished_at``, so the wait in the queue counts.
    The period is ``since``..``until`` when given, else the first job's start to the last one's
    end; jobs per hour divide by it (one hour at least).

    One pass over the jobs: a column per stage, each with its own ordered-set aggregates
    (``percentile_cont`` skips the nulls of jobs that never reached the stage), then unpivoted.
    """
    where = finished_jobs_where(filters, ("completed", "failed"))
    # The period ends now at the latest: hours still to come have no jobs yet.
    period_end = min(filters.until_before, timezone.now()) if filters.until_before else None
    stages = [*PIPELINE_STAGES, END_TO_END]
    columns = ",\n".join(
        f"(j.timings -> '{stage}' ->> 'seconds')::float8 AS {stage}" for stage in PIPELINE_STAGES
    )
    aggregates = ",\n".join(
        f"count({stage}) AS {stage}_jobs, "
        f"percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY {stage}) AS {stage}_p, "
        f"max({stage}) AS {stage}_max"
        for stage in stages
    )
    unpivot = ", ".join(
        f"('{stage}', {stage}_jobs, {stage}_p[1], {stage}_p[2], {stage}_max)" for stage in stages
    )
    # MATERIALIZED: each job's seconds are read from its JSON once; inlined, every aggregate
    # (count, percentiles, max) would extract them again (0.64 s against 0.36 s at 100k jobs).
    sql = f"""
        WITH jobs AS MATERIALIZED (
            SELECT {columns},
                   CASE WHEN j.stage = 'completed' THEN extract(epoch FROM j.finished_at - started.at)::float8
                   END AS {END_TO_END},
                   started.at AS started_at, j.finished_at
            FROM recognition_job j
            CROSS JOIN LATERAL (
                SELECT coalesce((j.timings -> 'uploading' ->> 'started_at')::timestamptz,
                                (j.timings -> 'queued' ->> 'started_at')::timestamptz,
                                j.created_at) AS at
            ) AS started
            WHERE {where.sql}
        ), totals AS (
            SELECT {aggregates},
                   greatest(extract(epoch FROM coalesce(%s::timestamptz, max(finished_at))
                                             - coalesce(%s::timestamptz, min(started_at))) / 3600.0, 1.0)::float8
                       AS hours
            FROM jobs
        )
        SELECT v.stage, v.jobs, v.p50_seconds, v.p95_seconds, v.max_seconds, v.jobs / totals.hours AS jobs_per_hour
        FROM totals
        CROSS JOIN LATERAL (VALUES {unpivot}) AS v(stage, jobs, p50_seconds, p95_seconds, max_seconds)
        WHERE v.jobs > 0
    """
    return _rows(sql, [*where.params, period_end, filters.since_at])


# --- failures --------------------------------------------------------------------------------


def failures(filters: ReportFilters) -> list[dict]:
    """Failed jobs per reason code (``unknown`` when a job has none), most frequent first, with
    when it last happened and the latest failure's asset and message as an example."""
    where = finished_jobs_where(filters, ("failed",))
    sql = f"""
        WITH failed AS (
            SELECT coalesce(nullif(j.error_code, ''), 'unknown') AS reason, j.id, j.finished_at, j.error, j.asset_id
            FROM recognition_job j
            WHERE {where.sql}
        ), counted AS (
            SELECT reason, count(*) AS jobs, max(finished_at) AS last_seen FROM failed GROUP BY reason
        ), latest AS (
            SELECT DISTINCT ON (reason) reason, asset_id, error
            FROM failed
            ORDER BY reason, finished_at DESC, id DESC
        )
        SELECT c.reason, c.jobs, c.last_seen, l.asset_id AS example_asset, a.original_name AS example_name,
               l.error AS example_error
        FROM counted c
        JOIN latest l USING (reason)
        JOIN media_asset a ON a.id = l.asset_id
        ORDER BY c.jobs DESC, c.reason
    """
    return _rows(sql, where.params)


# --- summary ---------------------------------------------------------------------------------


def summary(filters: ReportFilters) -> dict:
    """The totals of the selection in one row; the daily report's columns add up to them.

    Faces are counted per (person, dismissed) first: one small row per person, from which
    the totals and the number of people follow."""
    assets = asset_where(filters)
    faces = faces_where(filters)
    jobs = finished_jobs_where(filters, ("completed", "failed"))
    embeddings = _of_selected_assets(Where(), "e", assets)
    sql = f"""
        WITH asset_totals AS (
            SELECT count(*) FILTER (WHERE a.kind = 'image') AS photos,
                   count(*) FILTER (WHERE a.kind = 'video') AS videos,
                   coalesce(sum(a.size_bytes), 0)::bigint AS storage_bytes
            FROM media_asset a WHERE {assets.sql}
        ), per_person AS (
            SELECT f.subject_id, f.dismissed, count(*) AS faces
            FROM recognition_face f
            WHERE {faces.sql}
            GROUP BY 1, 2
        ), face_totals AS (
            SELECT coalesce(sum(p.faces) FILTER (WHERE NOT p.dismissed), 0)::bigint AS faces,
                   coalesce(sum(p.faces) FILTER (WHERE NOT p.dismissed AND s.name <> ''), 0)::bigint
                       AS recognised_faces,
                   coalesce(sum(p.faces) FILTER (WHERE p.dismissed), 0)::bigint AS dismissed_faces,
                   count(*) FILTER (WHERE NOT p.dismissed AND s.name <> '') AS people,
                   count(*) FILTER (WHERE NOT p.dismissed AND s.name = '') AS unnamed_people
            FROM per_person p
            LEFT JOIN recognition_subject s ON s.id = p.subject_id
        ), job_totals AS (
            SELECT count(*) AS finished_jobs, count(*) FILTER (WHERE j.stage = 'failed') AS failed_jobs
            FROM recognition_job j
            WHERE {jobs.sql}
        ), versions AS (
            SELECT coalesce(jsonb_agg(jsonb_build_object('model', model, 'version', version, 'count', n)
                                      ORDER BY model, n DESC, version), '[]'::jsonb) AS model_versions
            FROM (
                SELECT 'face' AS model, f.model_version AS version, count(*) AS n
                FROM recognition_face f
                WHERE {faces.sql} AND NOT f.dismissed
                GROUP BY f.model_version
                UNION ALL
                SELECT 'image', e.model_version, count(*)
                FROM recognition_imageembedding e
                WHERE {embeddings.sql}
                GROUP BY e.model_version
            ) AS in_use
        )
        SELECT asset_totals.*, face_totals.faces, face_totals.recognised_faces,
               face_totals.faces - face_totals.recognised_faces AS unknown_faces,
               face_totals.dismissed_faces, face_totals.people, face_totals.unnamed_people,
               job_totals.*, versions.model_versions
        FROM asset_totals, face_totals, job_totals, versions
    """
    params = [*assets.params, *faces.params, *jobs.params, *faces.params, *embeddings.params]
    row = _rows(sql, params)[0]
    # Django has psycopg hand jsonb over as text (its JSONField decodes it itself).
    if isinstance(row["model_versions"], str):
        row["model_versions"] = json.loads(row["model_versions"])
    faces_total = row["faces"]
    row["recognised_share"] = row["recognised_faces"] / faces_total if faces_total else None
    row["unknown_share"] = row["unknown_faces"] / faces_total if faces_total else None
    return row
