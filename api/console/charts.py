"""A small server-side SVG line chart: the evidence readings of a case with the rule's threshold drawn.

Server-rendered so the console stays fast on a cheap laptop and needs no charting library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 640, 180, 24


@dataclass(frozen=True, slots=True)
class Chart:
    points: str  # SVG polyline points
    threshold_y: float | None
    y_min: float
    y_max: float
    field: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT


def numeric(samples: Iterable[tuple[int, object]]) -> list[tuple[int, float]]:
    """The numeric (ts_ms, value) samples, in time order: booleans and strings cannot be drawn."""
    return sorted(
        (int(ts), float(v)) for ts, v in samples if isinstance(v, int | float) and not isinstance(v, bool)
    )


def line_chart(
    samples: list[tuple[int, float]], field: str, unit: str, threshold: float | None
) -> Chart | None:
    """None when there is nothing to draw (fewer than two numeric samples)."""
    if len(samples) < 2:
        return None
    t0, t1 = samples[0][0], samples[-1][0]
    values = [v for _, v in samples] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1
    span_t = max(t1 - t0, 1)

    def x(ts: int) -> float:
        return PAD + (ts - t0) / span_t * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD - (v - low) / (high - low) * (HEIGHT - 2 * PAD)

    points = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in samples)
    return Chart(points, y(threshold) if threshold is not None else None, low, high, field, unit)


# A trend over buckets (weeks): real axes, each point's value readable, several series with a legend.
# Drawn by the template (kpis.html) from these numbers; colours and dash patterns live in kpis.css, so
# the strict CSP has nothing inline to refuse.
TREND_WIDTH, TREND_HEIGHT = 720, 260
TREND_LEFT, TREND_RIGHT, TREND_TOP, TREND_BOTTOM = 56, 16, 24, 44  # margins for the axis labels
MAX_X_LABELS = 8  # more buckets than this: every k-th is labelled (every point keeps its <title>)
PERCENT_TICKS = (0.0, 25.0, 50.0, 75.0, 100.0)
LABEL_GAP = 13  # user units between two value labels of one bucket


@dataclass(frozen=True, slots=True)
class Bucket:
    """One stretch of the x axis: its label (e.g. "11/02–11/08"), a second line (e.g. "第45周")."""

    label: str
    sub: str = ""


@dataclass(frozen=True, slots=True)
class TrendPoint:
    x: float
    y: float
    label_y: float  # where the value is written: above the point, clear of another series' label
    text: str  # the value as a person reads it, e.g. "12" or "94.4%"
    bucket: str  # the bucket's label, for the point's <title>


@dataclass(frozen=True, slots=True)
class TrendSeries:
    key: str  # a CSS class suffix: the series' colour and marker shape
    name: str
    points: list[TrendPoint]
    lines: list[str]  # SVG polyline points, one per run without a gap


@dataclass(frozen=True, slots=True)
class AxisTick:
    at: float
    label: str
    sub: str = ""


@dataclass(frozen=True, slots=True)
class TrendChart:
    unit: str
    series: list[TrendSeries]
    x_ticks: list[AxisTick]
    y_ticks: list[AxisTick]
    width: int = TREND_WIDTH
    height: int = TREND_HEIGHT
    left: int = TREND_LEFT
    right: int = TREND_WIDTH - TREND_RIGHT
    top: int = TREND_TOP
    bottom: int = TREND_HEIGHT - TREND_BOTTOM


def count_ticks(high: float, count: int = 4) -> list[float]:
    """Whole-number ticks from 0, steps of 1, 2 or 5 times a power of ten, the last at least ``high``."""
    step = 1
    while step * count < high:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2  # 1 → 2 → 5 → 10 → 20 → 50 …
    top = max(step, -(-int(high) // step) * step)
    return [float(v) for v in range(0, top + 1, step)]


def format_count(value: float) -> str:
    return f"{value:.0f}"


def format_percent(value: float) -> str:
    return f"{value:.1f}%"


def trend_chart(
    buckets: list[Bucket],
    series: list[tuple[str, str, list[float | None]]],
    unit: str,
    *,
    percent: bool = False,
) -> TrendChart:
    """A chart of ``series`` (key, name, one value or None per bucket) over ``buckets``, from 0 up:
    percentages to 100, counts to a round number above the largest. A None is a gap, not a zero."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    y_values = list(PERCENT_TICKS) if percent else count_ticks(max(values, default=0.0))
    high = y_values[-1] or 1.0
    plot_w = TREND_WIDTH - TREND_LEFT - TREND_RIGHT
    slot = plot_w / max(len(buckets), 1)

    def x(i: int) -> float:
        return round(TREND_LEFT + (i + 0.5) * slot, 1)

    def y(value: float) -> float:
        return round(
            TREND_HEIGHT - TREND_BOTTOM - value / high * (TREND_HEIGHT - TREND_TOP - TREND_BOTTOM), 1
        )

    text = format_percent if percent else format_count
    taken: dict[int, list[float]] = {}  # bucket -> label heights already used
    drawn = []
    for key, name, vs in series:
        points = []
        for i, v in enumerate(vs):
            if v is None:
                continue
            label_y = y(v) - 8
            while any(abs(label_y - used) < LABEL_GAP for used in taken.get(i, [])):
                label_y -= LABEL_GAP
            taken.setdefault(i, []).append(label_y)
            points.append(TrendPoint(x(i), y(v), label_y, text(v), buckets[i].label))
        runs: list[list[str]] = []
        previous: int | None = None
        for i, v in enumerate(vs):
            if v is None:
                continue
            if previous is None or i != previous + 1:
                runs.append([])
            runs[-1].append(f"{x(i)},{y(v)}")
            previous = i
        drawn.append(TrendSeries(key, name, points, [" ".join(run) for run in runs if len(run) > 1]))
    every = -(-len(buckets) // MAX_X_LABELS) if buckets else 1
    return TrendChart(
        unit=unit,
        series=drawn,
        x_ticks=[AxisTick(x(i), b.label, b.sub) for i, b in enumerate(buckets) if i % every == 0],
        y_ticks=[AxisTick(y(v), text(v) if percent else format_count(v)) for v in y_values],
    )
