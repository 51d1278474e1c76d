"""Per-sample conditions: each keeps the small state one series needs and judges every new value.

A verdict is BREACH, CLEAR, HOLD (inside a hysteresis band: keep the current state) or UNKNOWN (not
enough data yet to decide, e.g. during warm-up). State is plain JSON so the engine can checkpoint it.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from enum import Enum
from typing import Any, Protocol

from alerts.rules import Anomaly, Rate, Rule, Scalar, Threshold, compare

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
        return Verdict.BREACH if compare(per_minute, self._spec.op, self._spec.per_minute) else Verdict.CLEAR

    def dump(self) -> dict[str, Any]:
        return {"samples": list(self._samples)}

    def load(self, state: dict[str, Any]) -> None:
        self._samples.extend((int(t), float(v)) for t, v in state.get("samples", []))


def _judge(z: float, spec: Anomaly) -> Verdict:
    if abs(z) >= spec.threshold:
        return Verdict.BREACH
    return Verdict.CLEAR if abs(z) < spec.threshold * spec.clear_ratio else Verdict.HOLD


class MadCondition:
    """Robust z-score against the rolling median and MAD of the previous ``window`` samples."""

    def __init__(self, spec: Anomaly) -> None:
        self._spec = spec
        self._window: deque[float] = deque(maxlen=spec.window)

    def update(self, ts_ms: int, value: Scalar) -> Verdict:
        number = _number(value)
        if number is None:
            return Verdict.UNKNOWN
        history = list(self._window)
        # The sample joins the window afterwards, so a lasting level shift becomes the new normal.
        self._window.append(number)
        if len(history) < self._spec.warmup:
            return Verdict.UNKNOWN
        median = statistics.median(history)
        mad = statistics.median(abs(x - median) for x in history)
        spread = max(mad * MAD_TO_SIGMA, self._spec.min_spread, 1e-9)
        return _judge((number - median) / spread, self._spec)

    def dump(self) -> dict[str, Any]:
        return {"window": list(self._window)}

    def load(self, state: dict[str, Any]) -> None:
        self._window.extend(float(v) for v in state.get("window", []))


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
