"""Running a report: the cache in front of the SQL, and one shape for every caller (API,
pages, command)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from analysis import cache, reports
from analysis.filters import ReportFilters


@dataclass(frozen=True)
class ReportResult:
    report: reports.Report
    filters: ReportFilters
    rows: list[dict]
    cached: bool
    seconds: float  # how long answering took, cache lookup included

    def as_body(self) -> dict:
        """The API's JSON body."""
        return {
            "report": self.report.name,
            "title": self.report.title,
            "filters": self.filters.describe(),
            "columns": self.report.column_names(),
            "rows": self.rows,
        }


def run(name: str, filters: ReportFilters, *, use_cache: bool = True) -> ReportResult:
    """The report's rows for ``filters`` (already resolved for the viewer: see ``filters.resolve``).

    Raises ``NotFound`` for a report that does not exist."""
    report = reports.get(name)
    started = time.perf_counter()
    if use_cache:
        answer = cache.cached(name, filters, lambda: report.run(filters))
        rows, hit = answer.rows, answer.hit
    else:
        rows, hit = report.run(filters), False
    return ReportResult(report, filters, rows, hit, time.perf_counter() - started)
