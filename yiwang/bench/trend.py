"""Is a soak series growing? A least-squares slope, its significance, and floors that matter.

A series grows when all of these hold: the slope is positive and significant (t = slope / its
standard error > ``T_MIN``), it adds at least ``pct_per_h`` % of the series' mean per hour, at least
``abs_per_h`` units per hour, and at least ``min_rise`` units over the window judged. The
significance alone would flag a harmless 2 ms/h drift over 90 samples; the floors alone would flag
noise on a short window. Samples of a soak are autocorrelated, so t is optimistic; the floors keep
that from turning noise into a verdict. A leak of 1 MB/min (60 MB/h) over a 15-minute window is
flagged on any process below 1.2 GB of RSS (tests/test_soak.py checks it on a synthetic series).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

T_MIN = 3.0


@dataclass(frozen=True, slots=True)
class Criterion:
    pct_per_h: float
    abs_per_h: float
    # The fitted rise over the judged window must reach this too: on a short window one allocator
    # step of a few MB extrapolates to hundreds of MB/h.
    min_rise: float


# Memory in MB: the 5 %/h of the mean or 20 MB/h, whichever is larger.
MEMORY = Criterion(pct_per_h=5.0, abs_per_h=20.0, min_rise=5.0)
# Latency in ms: a queue that is building makes latency climb by seconds per minute; 25 %/h and
# 20 ms/h ignore a few ms of drift from the database growing under the probe's query.
LATENCY = Criterion(pct_per_h=25.0, abs_per_h=20.0, min_rise=20.0)
# Queue depths in messages hover near zero at half capacity, so a percentage of the mean means
# little: 1,000 messages/h of sustained growth is the floor (a backlog of 10 s of load in an hour).
QUEUE = Criterion(pct_per_h=0.0, abs_per_h=1000.0, min_rise=500.0)


@dataclass(frozen=True, slots=True)
class Trend:
    slope_per_h: float
    pct_of_mean_per_h: float
    mean: float
    t: float
    growth: bool

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "slope_per_h": round(self.slope_per_h, 3),
            "pct_of_mean_per_h": round(self.pct_of_mean_per_h, 2),
            "mean": round(self.mean, 3),
            "t": round(self.t, 2) if math.isfinite(self.t) else 0.0,
            "growth": self.growth,
        }


def trend(seconds: Sequence[float], values: Sequence[float], criterion: Criterion) -> Trend:
    """Least-squares trend of ``values`` sampled at ``seconds``; at least 3 samples."""
    if len(seconds) != len(values):
        raise ValueError(f"{len(seconds)} times but {len(values)} values")
    if len(values) < 3:
        raise ValueError(f"a trend needs at least 3 samples, got {len(values)}")
    hours = [s / 3600 for s in seconds]
    n = len(values)
    mx, my = sum(hours) / n, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in hours)
    if sxx == 0:
        raise ValueError("all samples at the same time")
    slope = sum((x - mx) * (y - my) for x, y in zip(hours, values, strict=True)) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(hours, values, strict=True))
    stderr = math.sqrt(residual / (n - 2) / sxx)
    t = slope / stderr if stderr > 0 else (math.inf if slope > 0 else 0.0)
    pct = slope / my * 100 if my > 0 else 0.0
    growth = (
        slope > 0
        and t > T_MIN
        and slope >= criterion.abs_per_h
        and slope * (max(hours) - min(hours)) >= criterion.min_rise
        and (criterion.pct_per_h == 0 or pct >= criterion.pct_per_h)
    )
    return Trend(slope, pct, my, t, growth)
