"""Report rows as CSV (the API's ``?format=csv``, the pages' download links, the command) and
as a plain-text table (the command): the same rows and columns as the JSON, one header line."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from analysis.reports import Report


def cell(value) -> str:
    """One value as CSV text: ISO dates, ``true``/``false``, floats to 10 significant digits, empty for null, lists as
    ``model version (count)`` joined by ``; ``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.10g}"  # 2.51746, not the 2.5174600000000003 of binary arithmetic
    if isinstance(value, list):
        return "; ".join(
            f"{item['model']} {item['version']} ({item['count']})" if isinstance(item, dict) else str(item)
            for item in value
        )
    return str(value)


def to_csv(report: Report, rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = report.column_names()
    writer.writerow(names)
    for row in rows:
        writer.writerow([_neutralised(cell(row.get(name))) for name in names])
    return buffer.getvalue()


def _neutralised(text: str) -> str:
    """Names come from users: a cell starting with = + - @ would run as a formula in a
    spreadsheet (CSV injection); a leading quote keeps it text. Numbers are left alone."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def table_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return cell(value)


def to_table(report: Report, rows: list[dict]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    names = report.column_names()
    cells = [[table_cell(row.get(name)) for name in names] for row in rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(names)]
    numeric = [column.kind in {"int", "float", "seconds", "share", "bytes"} for column in report.columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), line(["-" * w for w in widths])]
    out += [line(values) for values in cells]
    if not rows:
        out.append("(no rows)")
    return "\n".join(out) + "\n"
