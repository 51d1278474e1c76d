"""A time chart drawn on the server as SVG: real axes (local times, values with their unit), the series
with its gaps left open, and the rule thresholds as dashed lines.

Server-rendered like the case page's chart (``api/console/charts.py``): the browser gets finished SVG
(no charting library to ship, nothing inline for the strict CSP to refuse), the axis labels are text a
screen reader and a test can read, and the page works with scripts off. The series arrives already
bucketed by the store (at most ~500 windows a span), so a 30-day chart is as cheap as a 1-hour one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28  # margins around the plot, for the axis labels
# Tick steps a person reads at a glance, in seconds; at most MAX_X_TICKS of them across the chart.
TIME_STEPS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800)
MAX_X_TICKS = 7
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # x or y in the SVG's user units
    label: str


@dataclass(frozen=True, slots=True)
class Threshold:
    y: float
    value: float
    label: str  # the rule's words, e.g. "≥ 50"


@dataclass(frozen=True, slots=True)
class TimeChart:
    since_ms: int
    until_ms: int
    window_s: int
    lines: list[str]  # SVG polyline points, one per run of windows without a gap
    dots: list[tuple[float, float]]  # a lone window between gaps, drawn as a dot
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    thresholds: list[Threshold]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.lines and not self.dots


def time_ticks(since_ms: int, until_ms: int, tz: ZoneInfo) -> list[tuple[int, str]]:
    """(ms, label) of the ticks of a time axis, on round local times: hours and minutes while a step is
    under a day, then month-day."""
    span_s = max(1, (until_ms - since_ms) // 1000)
    step = next((s for s in TIME_STEPS_S if span_s / s <= MAX_X_TICKS), TIME_STEPS_S[-1])
    start = datetime.fromtimestamp(since_ms / 1000, tz)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if step < DAY_S:
        tick = midnight + timedelta(seconds=step * math.ceil((start - midnight).total_seconds() / step))
        fmt = "%H:%M" if span_s <= DAY_S else "%m-%d %H:%M"
    else:
        tick = midnight if midnight >= start else midnight + timedelta(days=1)
        fmt = "%m-%d"
    ticks: list[tuple[int, str]] = []
    while (ms := int(tick.timestamp() * 1000)) < until_ms and len(ticks) <= MAX_X_TICKS:
        ticks.append((ms, tick.strftime(fmt)))
        # Wall-clock steps in the zone: a day stays a calendar day across a DST change.
        tick = (tick + timedelta(seconds=step)).astimezone(tz)
    return ticks


def value_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) covering [low, high]."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [round(first + i * step, 10) for i in range(count + 3) if first + i * step <= high + step * 1e-9]


def format_value(value: float) -> str:
    return f"{value:.6g}"


def time_chart(
    samples: list[tuple[int, float]],
    since_ms: int,
    until_ms: int,
    window_s: int,
    thresholds: list[tuple[float, str]],
    tz: ZoneInfo,
) -> TimeChart:
    """The chart of ``samples`` (window start ms, value) in [since_ms, until_ms)."""
    values = [v for _, v in samples] + [v for v, _ in thresholds]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    y_values = value_ticks(low, high)
    span = max(until_ms - since_ms, 1)

    def x(ts: int) -> float:
        return round(LEFT + (ts - since_ms) / span * (WIDTH - LEFT - RIGHT), 1)

    def y(value: float) -> float:
        return round(HEIGHT - BOTTOM - (value - low) / (high - low) * (HEIGHT - TOP - BOTTOM), 1)

    runs: list[list[tuple[int, float]]] = []
    for ts, value in samples:
        # A missing window (no readings) is a gap in the line, not a straight line across it.
        if runs and ts - runs[-1][-1][0] <= window_s * 1000 * 2:
            runs[-1].append((ts, value))
        else:
            runs.append([(ts, value)])
    half = window_s * 500  # a window's value is drawn at its middle
    return TimeChart(
        since_ms=since_ms,
        until_ms=until_ms,
        window_s=window_s,
        lines=[" ".join(f"{x(ts + half)},{y(v)}" for ts, v in run) for run in runs if len(run) > 1],
        dots=[(x(run[0][0] + half), y(run[0][1])) for run in runs if len(run) == 1],
        x_ticks=[Tick(x(ms), label) for ms, label in time_ticks(since_ms, until_ms, tz)],
        y_ticks=[Tick(y(v), format_value(v)) for v in y_values if low <= v <= high],
        thresholds=[Threshold(y(v), v, label) for v, label in thresholds],
    )
