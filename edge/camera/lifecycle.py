"""Incident lifecycle: a noisy per-frame condition becomes one event with start → update → end.

Frigate's users drown in per-object event storms; here one incident is one event id. A condition must
hold for ``min_duration_s`` before ``start`` (a single noisy frame never starts anything) and must be
quiet for ``cooldown_s`` before ``end`` (an object stepping out and back in stays one incident).
``update`` is sent every ``update_interval_s`` while the condition still holds, carrying the running
duration and peak score. Time is the frame's time in seconds, so a recorded clip replays identically.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

Phase = Literal["start", "update", "end"]


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle step of one incident."""

    id: uuid.UUID
    phase: Phase
    t: float
    duration_s: float
    score: float


class IncidentTracker:
    """Debounces one boolean condition into incidents; feed it every analysed frame."""

    def __init__(self, *, min_duration_s: float, cooldown_s: float, update_interval_s: float) -> None:
        self.min_duration_s = min_duration_s
        self.cooldown_s = cooldown_s
        self.update_interval_s = update_interval_s
        self._pending_since: float | None = None
        self._id: uuid.UUID | None = None
        self._started: float = 0.0
        self._last_seen: float = 0.0
        self._last_update: float = 0.0
        self._peak: float = 0.0

    @property
    def active(self) -> bool:
        return self._id is not None

    @property
    def incident_id(self) -> uuid.UUID | None:
        return self._id

    def observe(self, t: float, condition: bool, score: float = 0.0) -> Transition | None:
        """Advance to time ``t``; returns the transition this observation caused, if any."""
        if self._id is None:
            if not condition:
                self._pending_since = None
                return None
            if self._pending_since is None:
                self._pending_since, self._peak = t, score
            self._peak = max(self._peak, score)
            if t - self._pending_since < self.min_duration_s:
                return None
            self._id = uuid.uuid4()
            self._started = self._pending_since
            self._last_seen = self._last_update = t
            return Transition(self._id, "start", t, t - self._started, self._peak)
        if not condition:
            return self.close(t) if t - self._last_seen >= self.cooldown_s else None
        self._last_seen = t
        self._peak = max(self._peak, score)
        # Updates say "still there"; none while the incident is only waiting out its cool-down.
        if t - self._last_update >= self.update_interval_s:
            self._last_update = t
            return Transition(self._id, "update", t, t - self._started, self._peak)
        return None

    def close(self, t: float) -> Transition | None:
        """End an active incident now (shutdown, or the camera it belongs to went away)."""
        if self._id is None:
            return None
        ended = Transition(self._id, "end", t, max(0.0, self._last_seen - self._started), self._peak)
        self._id = None
        self._pending_since = None
        self._peak = 0.0
        return ended


class RateLimiter:
    """Per-camera token bucket so a busy scene cannot flood the broker.

    ``start`` needs a token and a refused start suppresses its whole incident; ``update`` needs a token
    and is simply skipped; ``end`` of an incident that was announced always passes, so an operator never
    sees a start without its end.
    """

    def __init__(self, *, per_minute: float, burst: int) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None
        self._suppressed: set[uuid.UUID] = set()
        self.dropped = 0

    def allow(self, transition: Transition) -> bool:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (transition.t - self._last) * self.rate_per_s)
        self._last = transition.t
        if transition.id in self._suppressed:
            if transition.phase == "end":
                self._suppressed.discard(transition.id)
            self.dropped += 1
            return False
        if transition.phase == "end":
            return True
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if transition.phase == "start":
            self._suppressed.add(transition.id)
        self.dropped += 1
        return False
