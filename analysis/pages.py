"""What the report pages draw: one chart per report, computed from the report's own rows, so
the chart, the table under it, the CSV and the API never disagree."""

from __future__ import annotations

from analysis import charts

PEOPLE_IN_CHART = 20
ROWS_ON_PAGE = 200  # longer reports say so and point to the CSV


def person_label(row: dict) -> str:
    return row["name"] or f"Unnamed person {row['person']}"


def seconds_label(value: float) -> str:
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def daily_chart(rows: list[dict]):
    return charts.line_chart(
        [row["day"] for row in rows],
        [
            ("Photos and videos", [row["photos"] + row["videos"] for row in rows]),
            ("Faces", [row["faces"] for row in rows]),
            ("Recognised faces", [row["recognised_faces"] for row in rows]),
            ("Unknown faces", [row["unknown_faces"] for row in rows]),
        ],
        description="Uploads, faces, recognised and unknown faces per day; the table below has every number.",
    )


def people_chart(rows: list[dict]):
    top = rows[:PEOPLE_IN_CHART]
    return charts.bar_chart(
        [person_label(row) for row in top],
        [("Faces", [row["faces"] for row in top]), ("Photos and videos", [row["photos"] + row["videos"] for row in top])],
        description=f"Faces and photos of the {len(top)} people seen most; the table below has every person.",
    )


def latency_chart(rows: list[dict]):
    return charts.bar_chart(
        [row["stage"].replace("_", " ") for row in rows],
        [("p50", [row["p50_seconds"] for row in rows]), ("p95", [row["p95_seconds"] for row in rows])],
        description="Median and 95th percentile seconds per stage and end to end; the table below has the numbers.",
        value_format=seconds_label,
    )


def failures_chart(rows: list[dict]):
    return charts.bar_chart(
        [row["reason"] for row in rows], [("Failed jobs", [row["jobs"] for row in rows])],
        description="Failed jobs per reason; the table below has the numbers and an example of each.",
    )


def summary_chart(rows: list[dict]):
    row = rows[0]
    if not (row["faces"] or row["dismissed_faces"]):
        return None
    return charts.bar_chart(
        ["Recognised faces", "Unknown faces", "Dismissed"],
        [("Faces", [row["recognised_faces"], row["unknown_faces"], row["dismissed_faces"]])],
        description="Recognised, unknown and dismissed faces; the table below has the numbers.",
    )


CHARTS = {
    "daily": daily_chart,
    "people": people_chart,
    "latency": latency_chart,
    "failures": failures_chart,
    "summary": summary_chart,
}


def chart_for(name: str, rows: list[dict]):
    return CHARTS[name](rows)
