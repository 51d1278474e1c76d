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
