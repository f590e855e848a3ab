"""Indexes the reports need at scale (bench/reports.py: 1M faces, 100k jobs), on recognition's
tables. They live here, with the queries that use them (``analysis.queries``); recognition's
models do not know about them.

- ``face_report_subject`` (asset, person, dismissed): the face counts of the daily, people and
  summary reports come from this index alone (an index-only scan, in asset order, so faces are
  grouped per asset without hashing), instead of the face table's wide rows (each carries its
  128-d embedding).
- ``face_report_version`` (asset, model version, dismissed): the summary's model versions, the
  same way. Keys only, no INCLUDE: B-tree deduplication then stores the faces of one asset
  and version once, so the long version strings cost little.
- ``job_report_finished`` (stage, finished_at) + asset: finished and failed jobs by when they
  finished, without reading the jobs' rows for counts.
"""

from django.db import migrations

INDEXES = {
    "face_report_subject": "recognition_face (asset_id, subject_id, dismissed)",
    "face_report_version": "recognition_face (asset_id, model_version, dismissed)",
    "job_report_finished": "recognition_job (stage, finished_at) INCLUDE (asset_id)",
}


class Migration(migrations.Migration):

    dependencies = [
        ("media", "0001_initial"),
        ("recognition", "0003_people"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {definition}",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, definition in INDEXES.items()
    ]
