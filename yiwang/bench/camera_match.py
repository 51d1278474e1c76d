"""Event-level scoring of camera analytics: each detection is matched to one ground-truth incident.

A detection matches a truth only if kind and attribute (zone, tamper reason) agree and the start it
asserts lies within ``tolerance_s`` of the truth's start; matching is one-to-one, so a late detection
is a false positive *and* a miss, and a second detection of one incident is a false positive. Counting
events per clip would call both of those correct.

The start a detection asserts is the onset the analyser reports (event time − ``duration_s`` of its
start event: the condition held from then). How long the alert took to go out is the separate
``latency`` (event time − truth start), reported but not matched on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from edge.camera.synthetic import Truth


class Detection(NamedTuple):
    """One ``start`` event of the analyser, reduced to what is scored."""

    kind: str
    attr: str
    start_s: float
    """The onset the event asserts."""
    emitted_s: float
    """When the event was sent."""


@dataclass(frozen=True, slots=True)
class Match:
    truth: Truth
    detection: Detection

    @property
    def error_s(self) -> float:
        return abs(self.detection.start_s - self.truth.start_s)

    @property
    def latency_s(self) -> float:
        return self.detection.emitted_s - self.truth.start_s


@dataclass(slots=True)
class ClipResult:
    matches: list[Match] = field(default_factory=list)
    false_positives: list[Detection] = field(default_factory=list)
    misses: list[Truth] = field(default_factory=list)


def match(truths: Sequence[Truth], detections: Sequence[Detection], tolerance_s: float) -> ClipResult:
    """One-to-one matching of one clip's detections to its truth, by kind, attribute and start time.

    Within one (kind, attribute) the candidates of a truth form a time window, so taking truths in
    order of start and giving each the earliest free detection in its window matches as many as any
    assignment can.
    """
    result = ClipResult()
    free = sorted(detections, key=lambda d: d.start_s)
    for truth in sorted(truths, key=lambda t: t.start_s):
        found = next(
            (
                d
                for d in free
                if (d.kind, d.attr) == (truth.kind, truth.attr)
                and abs(d.start_s - truth.start_s) <= tolerance_s + 1e-9
            ),
            None,
        )
        if found is None:
            result.misses.append(truth)
        else:
            free.remove(found)
            result.matches.append(Match(truth, found))
    result.false_positives = free
    return result


@dataclass(slots=True)
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def scores(self) -> dict[str, float | int]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def percentile_ms(values_s: Iterable[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) in milliseconds; None without values."""
    ordered = sorted(values_s)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least the first
    return round(ordered[int(rank) - 1] * 1000.0, 1)


KINDS = ("camera.motion", "camera.tamper", "camera.haze")


def summarise(results: Sequence[ClipResult], tolerance_s: float) -> dict[str, object]:
    """Precision, recall and F1 overall, per kind and per (kind, attribute); timing of the matches."""
    overall = Tally()
    per_kind = {kind: Tally() for kind in KINDS}
    per_attr: dict[str, Tally] = {}

    def bump(kind: str, attr: str, which: str) -> None:
        label = f"{kind}/{attr}" if attr else kind
        for tally in (overall, per_kind.setdefault(kind, Tally()), per_attr.setdefault(label, Tally())):
            setattr(tally, which, getattr(tally, which) + 1)

    errors: list[float] = []
    latencies: list[float] = []
    for result in results:
        for m in result.matches:
            bump(m.truth.kind, m.truth.attr, "tp")
            errors.append(m.error_s)
            latencies.append(m.latency_s)
        for d in result.false_positives:
            bump(d.kind, d.attr, "fp")
        for t in result.misses:
            bump(t.kind, t.attr, "fn")
    return {
        "match_tolerance_ms": round(tolerance_s * 1000.0),
        **overall.scores(),
        "per_kind": {kind: tally.scores() for kind, tally in per_kind.items()},
        "per_attribute": {label: per_attr[label].scores() for label in sorted(per_attr)},
        "timing_error_ms": {
            "p50": percentile_ms(errors, 50),
            "p95": percentile_ms(errors, 95),
            "max": percentile_ms(errors, 100),
        },
        "alert_latency_ms": {"p50": percentile_ms(latencies, 50), "p95": percentile_ms(latencies, 95)},
    }
