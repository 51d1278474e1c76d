"""Incident debouncing and the per-camera rate limit, as tables of observations."""

from __future__ import annotations

import uuid

import pytest

from edge.camera.lifecycle import IncidentTracker, RateLimiter, Transition


def run(observations: list[tuple[float, bool]], **kw: float) -> list[tuple[float, str, float]]:
    params = {"min_duration_s": 1.0, "cooldown_s": 2.0, "update_interval_s": 5.0} | kw
    tracker = IncidentTracker(**params)
    out = []
    for t, cond in observations:
        step = tracker.observe(t, cond, 0.5 if cond else 0.0)
        if step is not None:
            out.append((t, step.phase, round(step.duration_s, 2)))
    return out


def ticks(start: float, stop: float, cond: bool, step: float = 0.5) -> list[tuple[float, bool]]:
    n = round((stop - start) / step)
    return [(start + i * step, cond) for i in range(n)]


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        # A blip shorter than min_duration never starts.
        (ticks(0, 0.5, True) + ticks(0.5, 10, False), []),
        # Held for 1 s: starts; quiet for the 2 s cool-down: ends, duration = time seen.
        (ticks(0, 3, True) + ticks(3, 8, False), [(1.0, "start", 1.0), (4.5, "end", 2.5)]),
        # A gap shorter than the cool-down does not split the incident.
        (
            ticks(0, 2, True) + ticks(2, 3, False) + ticks(3, 4, True) + ticks(4, 8, False),
            [(1.0, "start", 1.0), (5.5, "end", 3.5)],
        ),
        # Long incidents send updates every 5 s.
        (
            ticks(0, 12, True) + ticks(12, 15, False),
            [(1.0, "start", 1.0), (6.0, "update", 6.0), (11.0, "update", 11.0), (13.5, "end", 11.5)],
        ),
    ],
    ids=["blip", "start-end", "gap-in-cooldown", "updates"],
)
def test_tracker_table(
    observations: list[tuple[float, bool]], expected: list[tuple[float, str, float]]
) -> None:
    assert run(observations) == expected


def test_tracker_ids_are_stable_within_and_new_across_incidents() -> None:
    tracker = IncidentTracker(min_duration_s=0.0, cooldown_s=1.0, update_interval_s=0.5)
    steps = [tracker.observe(t / 10, 10 <= t < 20 or 40 <= t < 50) for t in range(80)]
    ids = [(s.phase, s.id) for s in steps if s is not None]
    first = {i for p, i in ids[: len(ids) // 2]}
    assert [p for p, _ in ids].count("start") == 2
    assert ids[0][1] != ids[-1][1]
    assert len(first) == 1


def transition(phase: str, t: float, ident: uuid.UUID | None = None) -> Transition:
    return Transition(ident or uuid.uuid4(), phase, t, 0.0, 0.0)  # type: ignore[arg-type]


def test_rate_limiter_drops_whole_incidents_and_keeps_ends() -> None:
    limiter = RateLimiter(per_minute=60, burst=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert limiter.allow(transition("start", 0.0, a))
    assert limiter.allow(transition("start", 0.0, b))
    assert not limiter.allow(transition("start", 0.0, c))  # no token: c is suppressed entirely
    assert not limiter.allow(transition("update", 0.1, a))  # updates are skipped when short
    assert limiter.allow(transition("end", 0.2, a))  # an announced incident always ends
    assert not limiter.allow(transition("end", 5.0, c))  # c was never announced
    assert limiter.allow(transition("start", 5.0))  # tokens refill at 1/s
    assert limiter.dropped == 3


def test_no_updates_while_only_waiting_out_the_cooldown() -> None:
    observations = ticks(0, 7, True) + ticks(7, 20, False)
    assert run(observations, cooldown_s=8.0) == [
        (1.0, "start", 1.0),
        (6.0, "update", 6.0),
        (14.5, "end", 6.5),
    ]
