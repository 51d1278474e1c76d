"""How long the stream's thread was held: the longest batch, tick and garbage collection.

Alert latency is set by the moments the stream cannot run; the service reports the worst of them in
its heartbeat (``pauses``) so a slow tail can be traced to its cause without a profiler.

A full collection walks every container the engine keeps — windows of hundreds of samples per
series, ~1 M references in the alerts bench — and held the stream 0.2–1.3 s at a time, six times in
five minutes. ``freeze_long_lived`` takes what exists once the engine is warm out of the collector's
walk (CPython's ``gc.freeze``); those objects are still freed by reference counting as usual.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pauses:
    """Longest and total time, in ms, of each kind of pause; counts of full collections."""

    longest_ms: dict[str, float] = field(default_factory=dict)
    total_ms: dict[str, float] = field(default_factory=dict)
    full_collections: int = 0
    _gc_started: float = 0.0

    def add(self, kind: str, ms: float) -> None:
        self.longest_ms[kind] = max(self.longest_ms.get(kind, 0.0), ms)
        self.total_ms[kind] = self.total_ms.get(kind, 0.0) + ms

    def watch_gc(self) -> None:
        """Time the interpreter's collections (a full one walks every object the engine keeps)."""
        gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        self.add(f"gc{info['generation']}", (time.perf_counter() - self._gc_started) * 1000)
        if info["generation"] == 2:
            self.full_collections += 1

    def snapshot(self) -> dict[str, Any]:
        # Called from the heartbeat's thread: dict() copies in one step, while the stream may add a key.
        return {
            "longest_ms": {k: round(v, 1) for k, v in sorted(dict(self.longest_ms).items())},
            "total_ms": {k: round(v) for k, v in sorted(dict(self.total_ms).items())},
            "full_collections": self.full_collections,
        }


def freeze_long_lived() -> None:
    """Leave every object that exists now out of future collections: the engine's windows and the
    catalog live as long as the service, and walking them is the whole cost of a full collection.
    Only garbage cycles that exist at this moment are kept for good (a one-off, bounded by now)."""
    gc.freeze()
