"""One alert's lifecycle: inactive → pending → firing → resolved, unknown when data is missing.

Verdicts come from conditions (per sample) or timers (per tick); the lifecycle turns them into the
transitions the case book records. Flapping — too many firing/resolved changes within a window —
keeps the alert firing and marks it unstable instead of opening and closing it again and again.

A clear that is a fact rather than a measurement (a gateway proved online) resolves at once even
while flapping: damping may change how often people hear about an alert, never keep it firing
against the facts. Its flapping mark stays until a calm window has passed, so the case book keeps
the re-fires in the case the alert already has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from alerts.conditions import Verdict
from alerts.rules import Rule

Status = Literal["inactive", "pending", "firing", "unknown"]
Kind = Literal["pending", "cancelled", "firing", "resolved", "unknown", "flapping"]


@dataclass
class AlertState:
    status: Status = "inactive"
    since_ms: int = 0  # event time the current status began
    pending_wall_ms: int = 0  # wall time pending began: the `for` timer also runs between samples
    changes: list[int] = field(default_factory=list)  # wall times of firing/resolved changes
    flapping: bool = False
    clear_since_wall_ms: int | None = None
    silenced: bool = False

    def dump(self) -> dict[str, Any]:
        # By hand, not dataclasses.asdict: checkpoints dump thousands of these at once.
        return {
            "status": self.status,
            "since_ms": self.since_ms,
            "pending_wall_ms": self.pending_wall_ms,
            "changes": list(self.changes),
            "flapping": self.flapping,
            "clear_since_wall_ms": self.clear_since_wall_ms,
            "silenced": self.silenced,
        }

    @classmethod
    def load(cls, state: dict[str, Any]) -> AlertState:
        return cls(**state)


def _changed(state: AlertState, rule: Rule, wall_ms: int) -> bool:
    """Record a firing/resolved change; True when it makes the alert flap."""
    window_ms = rule.flapping.window_s * 1000
    state.changes = [t for t in state.changes if wall_ms - t <= window_ms] + [wall_ms]
    return len(state.changes) > rule.flapping.max_changes


def _fire(state: AlertState, rule: Rule, ts_ms: int, wall_ms: int) -> list[Kind]:
    state.status, state.since_ms, state.clear_since_wall_ms = "firing", ts_ms, None
    if state.flapping and all(wall_ms - t > rule.flapping.window_s * 1000 for t in state.changes):
        state.flapping = False  # resolved by a fact and calm for a whole window since: settled
    _changed(state, rule, wall_ms)
    return ["firing"]


def step(
    state: AlertState, verdict: Verdict, rule: Rule, ts_ms: int, wall_ms: int, *, fact: bool = False
) -> list[Kind]:
    """Apply one verdict; returns the transitions it causes (usually none).

    ``fact``: a CLEAR that is a known fact, not a sample that may swing back; it resolves at once.
    """
    if verdict is Verdict.UNKNOWN:
        return []
    if verdict is Verdict.BREACH:
        state.clear_since_wall_ms = None
        if state.status in ("inactive",):
            if rule.for_s <= 0:
                return _fire(state, rule, ts_ms, wall_ms)
            state.status, state.since_ms, state.pending_wall_ms = "pending", ts_ms, wall_ms
            return ["pending"]
        if state.status == "pending":
            return due(state, rule, wall_ms, ts_ms)
        if state.status == "unknown":
            state.status = "firing"  # data is back and still breaching: the same incident goes on
            return ["firing"]
        return []
    if verdict is Verdict.HOLD:
        state.clear_since_wall_ms = None
        return []
    # CLEAR
    if state.status == "pending":
        state.status = "inactive"
        return ["cancelled"]
    if state.status not in ("firing", "unknown"):
        return []
    if fact:
        kinds: list[Kind] = []
        if state.status == "firing" and _changed(state, rule, wall_ms) and not state.flapping:
            state.flapping = True
            kinds.append("flapping")
        state.status, state.since_ms, state.clear_since_wall_ms = "inactive", ts_ms, None
        return [*kinds, "resolved"]
    if state.flapping:
        if state.clear_since_wall_ms is None:
            state.clear_since_wall_ms = wall_ms
        if wall_ms - state.clear_since_wall_ms < rule.flapping.window_s * 1000:
            return []  # unstable: resolve only after a whole calm window
        state.flapping = False
    elif state.status == "firing" and _changed(state, rule, wall_ms):
        state.flapping, state.clear_since_wall_ms = True, wall_ms
        return ["flapping"]
    state.status, state.since_ms = "inactive", ts_ms
    return ["resolved"]


def due(state: AlertState, rule: Rule, wall_ms: int, ts_ms: int | None = None) -> list[Kind]:
    """A pending alert whose `for` duration has passed (in event time or wall time) fires."""
    if state.status != "pending":
        return []
    event_elapsed = (ts_ms - state.since_ms) if ts_ms is not None else 0
    if max(event_elapsed, wall_ms - state.pending_wall_ms) >= rule.for_s * 1000:
        return _fire(state, rule, ts_ms if ts_ms is not None else state.since_ms, wall_ms)
    return []


def lose_data(state: AlertState) -> list[Kind]:
    """The data needed to decide stopped: a firing alert becomes unknown, never resolved."""
    if state.status == "firing":
        state.status = "unknown"
        return ["unknown"]
    if state.status == "pending":
        state.status = "inactive"
        return ["cancelled"]
    return []
