"""Per-sample conditions: each keeps the small state one series needs and judges every new value.

A verdict is BREACH, CLEAR, HOLD (inside a hysteresis band: keep the current state) or UNKNOWN (not
enough data yet to decide, e.g. during warm-up). State is plain JSON so the engine can checkpoint it.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from enum import Enum
from typing import Any, Protocol

from alerts.rules import Anomaly, Rate, Rule, Scalar, Threshold

MAD_TO_SIGMA = 1.4826  # MAD × this estimates σ for normally distributed noise
HOURS_PER_WEEK = 168


class Verdict(Enum):
    BREACH = "breach"
    CLEAR = "clear"
    HOLD = "hold"
    UNKNOWN = "unknown"


class Condition(Protocol):
    def update(self, ts_ms: int, value: Scalar) -> Verdict: ...
    def dump(self) -> dict[str, Any]: ...
    def load(self, state: dict[str, Any]) -> None: ...


def _number(value: Scalar) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class ThresholdCondition:
    def __init__(self, spec: Threshold) -> None:
        self._spec = spec
        self._recent: deque[bool] = deque(maxlen=spec.n_of_m.m if spec.n_of_m else 1)

    def update(self, ts_ms: int, value: Scalar) -> Verdict:
        spec = self._spec
        self._recent.append(spec.breached(value))
        if spec.n_of_m is not None:
            breaches = sum(self._recent)
            if breaches >= spec.n_of_m.n:
                return Verdict.BREACH
            return Verdict.CLEAR if spec.cleared(value) else Verdict.HOLD
        if self._recent[-1]:
            return Verdict.BREACH
        return Verdict.CLEAR if spec.cleared(value) else Verdict.HOLD

    def dump(self) -> dict[str, Any]:
        return {"recent": list(self._recent)}

    def load(self, state: dict[str, Any]) -> None:
        self._recent.extend(bool(b) for b in state.get("recent", []))


class RateCondition:
    def __init__(self, spec: Rate) -> None:
        self._spec = spec
        self._samples: deque[tuple[int, float]] = deque()

    def update(self, ts_ms: int, value: Scalar) -> Verdict:
        number = _number(value)
        if number is None:
            return Verdict.UNKNOWN
        window_ms = self._spec.window_s * 1000
        self._samples.append((ts_ms, number))
        while self._samples and ts_ms - self._samples[0][0] > window_ms:
            self._samples.popleft()
        first_ts, first = self._samples[0]
        span_ms = ts_ms - first_ts
        if span_ms < window_ms / 2:
            return Verdict.UNKNOWN  # too little history to call a trend
        per_minute = (number - first) / (span_ms / 60_000)
        if self._spec.breached(per_minute):
            return Verdict.BREACH
        return Verdict.CLEAR if self._spec.cleared(per_minute) else Verdict.HOLD

    def dump(self) -> dict[str, Any]:
        return {"samples": list(self._samples)}

    def load(self, state: dict[str, Any]) -> None:
        self._samples.extend((int(t), float(v)) for t, v in state.get("samples", []))


def _judge(z: float, spec: Anomaly) -> Verdict:
    if abs(z) >= spec.threshold:
        return Verdict.BREACH
    return Verdict.CLEAR if abs(z) < spec.threshold * spec.clear_ratio else Verdict.HOLD


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _median_abs_deviation(ordered: list[float], median: float) -> float:
    """MAD of a sorted list in O(log n), no sort and no pass over the window.

    The deviations below the median, read outward from it, form one ascending sequence and those
    above it another; the MAD is the middle of the two merged, found by halving as in the classic
    k-th smallest of two sorted arrays. Windows of a few hundred samples per reading at ten readings
    a second per device make a linear merge here the engine's largest cost.
    """
    n = len(ordered)
    lo, hi = bisect.bisect_left(ordered, median) - 1, bisect.bisect_left(ordered, median)
    low = _kth_deviation(ordered, median, lo, hi, (n - 1) // 2 + 1)
    high = low if n % 2 else _kth_deviation(ordered, median, lo, hi, n // 2 + 1)
    return (low + high) / 2


def _kth_deviation(ordered: list[float], median: float, lo: int, hi: int, k: int) -> float:
    """The k-th smallest (1-based) |x - median|: below it ``median - ordered[lo - i]`` (i ascending),
    above it ``ordered[hi + j] - median`` (j ascending), both ascending sequences."""
    below, above = lo + 1, len(ordered) - hi
    i = j = 0
    while True:
        if i == below:
            return ordered[hi + j + k - 1] - median
        if j == above:
            return median - ordered[lo - (i + k - 1)]
        if k == 1:
            return min(median - ordered[lo - i], ordered[hi + j] - median)
        half = k // 2
        ni, nj = min(i + half, below) - 1, min(j + half, above) - 1
        if median - ordered[lo - ni] <= ordered[hi + nj] - median:
            k -= ni - i + 1
            i = ni + 1
        else:
            k -= nj - j + 1
            j = nj + 1


class MadCondition:
    """Robust z-score against the rolling median and MAD of the previous ``window`` samples.

    The window is kept sorted alongside its arrival order, so each sample costs a bisect and a short
    merge instead of two sorts: this condition runs for every reading of every device it watches.
    """

    def __init__(self, spec: Anomaly) -> None:
        self._spec = spec
        self._window: deque[float] = deque()
        self._sorted: list[float] = []

    def _add(self, number: float) -> None:
        self._window.append(number)
        bisect.insort(self._sorted, number)
        if len(self._window) > self._spec.window:
            del self._sorted[bisect.bisect_left(self._sorted, self._window.popleft())]

    def update(self, ts_ms: int, value: Scalar) -> Verdict:
        number = _number(value)
        if number is None:
            return Verdict.UNKNOWN
        warm, z = len(self._sorted) >= self._spec.warmup, 0.0
        if warm:
            median = _median(self._sorted)
            mad = _median_abs_deviation(self._sorted, median)
            spread = max(mad * MAD_TO_SIGMA, self._spec.min_spread, 1e-9)
            z = (number - median) / spread
        # The sample joins the window afterwards, so a lasting level shift becomes the new normal.
        self._add(number)
        return _judge(z, self._spec) if warm else Verdict.UNKNOWN

    def dump(self) -> dict[str, Any]:
        return {"window": list(self._window)}

    def load(self, state: dict[str, Any]) -> None:
        for value in state.get("window", []):
            self._add(float(value))


class _Ewma:
    __slots__ = ("count", "mean", "var")

    def __init__(self, mean: float = 0.0, var: float = 0.0, count: int = 0) -> None:
        self.mean, self.var, self.count = mean, var, count

    def add(self, x: float, alpha: float) -> None:
        if self.count == 0:
            self.mean = x
        else:
            diff = x - self.mean
            self.mean += alpha * diff
            self.var = (1 - alpha) * (self.var + alpha * diff * diff)
        self.count += 1


class EwmaCondition:
    """z-score against an exponentially weighted mean and variance; with ``hour_of_week`` one per hour."""

    def __init__(self, spec: Anomaly) -> None:
        self._spec = spec
        self._buckets: dict[int, _Ewma] = {}

    def _bucket(self, ts_ms: int) -> int:
        if self._spec.baseline != "hour_of_week":
            return 0
        local_hours = math.floor(ts_ms / 3_600_000 + self._spec.utc_offset_h)
        # 1970-01-01 was a Thursday; shift so bucket 0 is Monday 00:00 local time.
        return (local_hours + 72) % HOURS_PER_WEEK

    def update(self, ts_ms: int, value: Scalar) -> Verdict:
        number = _number(value)
        if number is None:
            return Verdict.UNKNOWN
        stats = self._buckets.setdefault(self._bucket(ts_ms), _Ewma())
        warm = stats.count >= self._spec.warmup
        spread = max(math.sqrt(stats.var), self._spec.min_spread, 1e-9)
        z = (number - stats.mean) / spread if warm else 0.0
        stats.add(number, self._spec.alpha)
        return _judge(z, self._spec) if warm else Verdict.UNKNOWN

    def dump(self) -> dict[str, Any]:
        return {"buckets": {str(k): [b.mean, b.var, b.count] for k, b in self._buckets.items()}}

    def load(self, state: dict[str, Any]) -> None:
        for key, (mean, var, count) in state.get("buckets", {}).items():
            self._buckets[int(key)] = _Ewma(float(mean), float(var), int(count))


def condition_for(rule: Rule) -> Condition | None:
    """The per-sample condition of a rule, or None for rules judged on events or timers."""
    if rule.threshold is not None:
        return ThresholdCondition(rule.threshold)
    if rule.rate is not None:
        return RateCondition(rule.rate)
    if rule.anomaly is not None:
        return MadCondition(rule.anomaly) if rule.anomaly.method == "mad" else EwmaCondition(rule.anomaly)
    return None
