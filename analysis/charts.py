"""Charts drawn on the server as inline SVG: no charting library, no CDN, nothing to download,
and the product works offline. Python computes the geometry; templates
(``analysis/_line_chart.html``, ``analysis/_bar_chart.html``) write the elements, so every
label is escaped by the template engine.

Charts are pictures of a table that follows them on the page: the SVG is ``role="img"`` with a
one-sentence description, and screen readers get the numbers from the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

# Colours with at least 4.5:1 contrast on white, told apart by the legend as well as by hue.
PALETTE = ("#2557d6", "#18794e", "#b45309", "#7c3aed", "#b42318", "#0e7490")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above ``value`` (an axis' top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10 ** exponent
        if top >= value - 1e-12:
            return float(top)
    return float(10 ** (exponent + 1))


def tick_label(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass
class Tick:
    position: float  # pixels along the axis
    label: str


@dataclass
class Series:
    name: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline points>
    dots: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class LineChart:
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    series: list[Series]
    description: str
    day_count: int = 0

    @property
    def dot_radius(self) -> int:
        """Few days are dots more than lines (one day is a dot alone): big enough to see."""
        return 5 if self.day_count <= 7 else 3

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width


def line_chart(days: list[date], series: list[tuple[str, list[float]]], *, description: str,
               width: int = 720, height: int = 260) -> LineChart | None:
    """Values per day as lines, one per series. None when there is nothing to draw."""
    if not days:
        return None
    left, right, top, bottom = 56, 16, 12, 36
    plot_width, plot_height = width - left - right, height - top - bottom
    y_max = nice_ceiling(max((max(values) for _, values in series if values), default=0))

    def x(i: int) -> float:
        return left + (plot_width / 2 if len(days) == 1 else plot_width * i / (len(days) - 1))

    def y(v: float) -> float:
        return top + plot_height * (1 - v / y_max)

    drawn = []
    for number, (name, values) in enumerate(series):
        coordinates = [(round(x(i), 1), round(y(v), 1)) for i, v in enumerate(values)]
        points = " ".join(f"{cx},{cy}" for cx, cy in coordinates)
        # Dots where a line alone could not be seen (one day) or the days are few enough to count.
        dots = coordinates if len(days) <= 31 else []
        drawn.append(Series(name, PALETTE[number % len(PALETTE)], points, dots))
    y_ticks = [Tick(round(y(y_max * i / 4), 1), tick_label(y_max * i / 4)) for i in range(5)]
    label_every = max(1, math.ceil(len(days) / 7))
    x_ticks = [Tick(round(x(i), 1), day.isoformat()) for i, day in enumerate(days) if i % label_every == 0]
    return LineChart(width, height, left, top, plot_width, plot_height, y_ticks, x_ticks, drawn, description,
                     len(days))


@dataclass
class Bar:
    y: float
    width: float
    colour: str
    value_label: str
    label_x: float


@dataclass
class BarRow:
    label: str
    y: float  # the label's baseline
    bars: list[Bar]


@dataclass
class BarChart:
    width: int
    height: int
    left: int
    bar_height: int
    rows: list[BarRow]
    legend: list[tuple[str, str]]  # (name, colour)
    description: str


def bar_chart(labels: list[str], series: list[tuple[str, list[float]]], *, description: str,
              value_format=tick_label, width: int = 720, label_width: int = 180) -> BarChart | None:
    """Horizontal bars, one group per label and one bar per series in the group. None when
    there is nothing to draw."""
    if not labels:
        return None
    bar_height, gap, group_gap = 16, 3, 14
    value_room = 72  # for the number after the longest bar
    plot_width = width - label_width - value_room
    top_value = max((max(values) for _, values in series if values), default=0) or 1
    group_height = len(series) * (bar_height + gap) - gap
    rows, y = [], 8.0
    for i, label in enumerate(labels):
        bars = []
        for number, (_, values) in enumerate(series):
            bar_width = max(0.0, plot_width * values[i] / top_value)
            bar_y = y + number * (bar_height + gap)
            bars.append(Bar(round(bar_y, 1), round(max(bar_width, 1.0 if values[i] else 0.0), 1),
                            PALETTE[number % len(PALETTE)], value_format(values[i]),
                            round(label_width + bar_width + 6, 1)))
        rows.append(BarRow(_shorten(label), round(y + group_height / 2 + 5, 1), bars))
        y += group_height + group_gap
    legend = [(name, PALETTE[number % len(PALETTE)]) for number, (name, _) in enumerate(series)]
    return BarChart(width, int(y), label_width, bar_height, rows, legend, description)


def _shorten(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
