"""Alarms get through: a flood opens its case while a gateway's link flaps, and across planned restarts.

- ``flaky-link``: gw-01's link (a chaos proxy of its own; gw-02 stays up) is cut and restored
  10 times in 5 minutes (× scale). A smoke detector of gw-01 stays in alarm all along (the
  sentinel: its firings after each reconnect show when the inhibition ended, see
  :mod:`yiwang.chaos.alarm_timing`), and wl-01 floods once, at a seeded random moment after a
  reconnect. Each cut sends gw-01's last will, which must still raise
  gateway-offline (one device_offline case in gw-01's home grid).
- ``stack-restart``: the whole stack stops cleanly and starts again 3 times in 10 minutes (× scale);
  after each start wl-01 floods (at a seeded random delay). The gateways' clean stops are planned:
  no device_offline case. The three floods are three firings of one alert; each opens a case or, as
  the case rules say, joins the open case of its grid and category (within the join window, 60 min):
  one flooding case in g-north holding three firings.

Durations scale as in :mod:`yiwang.chaos.scenarios`, down to a floor that still lets a gateway
reconnect (back-off up to 2 s) between two cuts.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from common.db import make_engine
from yiwang.chaos.accounting import Tally, wind_down
from yiwang.chaos.alarm_timing import firings, flood_latencies, inhibition_ends, muted_at_reading
from yiwang.chaos.gateway import Anomaly, last_tick
from yiwang.chaos.harness import COMMUNITY, FLOOD_LEVEL_CM, TICK_S, Harness, running_harness
from yiwang.chaos.processes import wait_until
from yiwang.chaos.scenarios import WARMUP_S

GATEWAY, FLOOD_DEVICE, SENTINEL = "gw-01", "wl-01", "sm-0101"
HOME_GRID = "g-north"  # of gw-01 (its first device) and of wl-01 and sm-0101
FLOOD_FP = f"flooding-water-level|{COMMUNITY}|{FLOOD_DEVICE}"
SENTINEL_FP = f"smoke-alarm|{COMMUNITY}|{SENTINEL}"
FLOOD_S = 12.0
LATENCY_BOUND_MS = 1000
CUTS, FLAKY_S = 10, 300.0
RESTARTS, RESTART_S = 3, 600.0
MIN_DOWN_S, MIN_UP_S = 1.0, 5.0
RECONNECTED_S = 3.0  # after a restore the gateway is back (its reconnect back-off is at most 2 s)


@dataclass
class AlarmRun:
    tally: Tally
    seed: int
    flood_latency_ms: list[int | None]
    inhibition_end_ms: list[int | None] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def ok(self) -> bool:
        return self.tally.ok() and all(self.checks.values())


def seed_for_run() -> int:
    """``YIWANG_CHAOS_SEED`` replays a run; otherwise a fresh seed (reported, so it can be replayed)."""
    given = os.environ.get("YIWANG_CHAOS_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**31)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _sleep_until_ms(wall_ms: int) -> None:
    time.sleep(max(0.0, (wall_ms - _now_ms()) / 1000))


def _flood(first_tick: int) -> Anomaly:
    return Anomaly(FLOOD_DEVICE, "level_cm", FLOOD_LEVEL_CM, first_tick, first_tick + int(FLOOD_S / TICK_S))


def _tick_ts(h: Harness, tick: int) -> int | None:
    """When gw-01 produced ``tick`` (by its own clock), once it has logged it."""
    log = h.gateways[GATEWAY].plan.log
    produced = log.read_text(encoding="utf-8") if log.exists() else ""
    for line in produced.split("\n")[:-1]:  # whole lines only: the last one may be half written
        parts = line.split()
        if len(parts) == 3 and parts[0] == "T" and int(parts[1]) == tick:
            return int(parts[2])
    return None


def _first_tick_ms(h: Harness) -> int:
    """The wall time of gw-01's tick 0: its ticks follow at TICK_S from there."""
    wait_until(lambda: _tick_ts(h, 0) is not None, 60, "gw-01's first tick")
    first = _tick_ts(h, 0)
    assert first is not None
    return first


@dataclass(frozen=True, slots=True)
class Cut:
    at_s: float  # after gw-01's tick 0
    down_s: float

    @property
    def restore_s(self) -> float:
        return self.at_s + self.down_s


def flaky_schedule(rng: random.Random, scale: float) -> tuple[list[Cut], float]:
    """The cuts, and the moment wl-01 floods: somewhere in the up time after a random reconnect."""
    cycle = FLAKY_S * scale / CUTS
    cuts: list[Cut] = []
    at = WARMUP_S
    for _ in range(CUTS):
        down = max(MIN_DOWN_S, rng.uniform(0.1, 0.3) * cycle)
        cuts.append(Cut(at, down))
        at += down + max(MIN_UP_S, cycle - down)
    k = rng.randrange(CUTS)
    up_until = cuts[k + 1].at_s if k + 1 < CUTS else cuts[k].restore_s + MIN_UP_S
    flood_at = rng.uniform(cuts[k].restore_s + RECONNECTED_S, up_until - 1.0)
    return cuts, flood_at


def flaky_link(config_dir: Path, scale: float, seed: int) -> AlarmRun:
    cuts, flood_at_s = flaky_schedule(random.Random(seed), scale)  # noqa: S311 - a replayable schedule, no secret
    flood_tick = int(flood_at_s / TICK_S)
    always = Anomaly(SENTINEL, "smoke", True, 0, 10**9)
    expected = {(HOME_GRID, "flooding"), (HOME_GRID, "fire_smoke"), (HOME_GRID, "device_offline")}
    planned = {GATEWAY: [always, _flood(flood_tick)]}
    with running_harness(config_dir, anomalies=planned, own_links=(GATEWAY,)) as h:
        zero = _first_tick_ms(h)
        link = h.links[GATEWAY]
        restored: list[int] = []
        for cut in cuts:
            _sleep_until_ms(zero + int(cut.at_s * 1000))
            link.cut()
            _sleep_until_ms(zero + int(cut.restore_s * 1000))
            link.restore()
            restored.append(_now_ms())
        _sleep_until_ms(zero + int((flood_at_s + FLOOD_S) * 1000))
        counted = wind_down(h, expected, "flaky-link")
        flood_ts = _tick_ts(h, flood_tick)
        latency: list[int | None] = [None]
        muted: list[bool | None] = [None]
        if flood_ts is not None:
            recorded = firings(h, FLOOD_FP)
            latency, muted = flood_latencies(recorded, [flood_ts]), muted_at_reading(recorded, [flood_ts])
        inhibition = inhibition_ends(firings(h, SENTINEL_FP), restored)
    measured = [v for v in latency if v is not None]
    return AlarmRun(
        counted,
        seed,
        latency,
        inhibition,
        checks={
            "flood_opened_case": len(measured) == len(latency),
            "flood_not_inhibited_at_its_reading": muted == [False],
            "flood_within_1s": all(v <= LATENCY_BOUND_MS for v in measured),
            "inhibition_ended_every_reconnect": all(v is not None for v in inhibition),
            "inhibition_ended_at_the_first_reading": all(v == 0 for v in inhibition),
        },
        details={
            "cuts": len(cuts),
            "down_s": [round(c.down_s, 1) for c in cuts],
            "flood_at_s": round(flood_at_s, 1),
        },
    )


def _cases(h: Harness) -> list[tuple[str, str]]:
    db = make_engine(h.postgres.url)
    try:
        with db.connect() as conn:
            return [(str(g), str(c)) for g, c in conn.execute(text("SELECT grid, category FROM cases")).all()]
    finally:
        db.dispose()


def stack_restart(config_dir: Path, scale: float, seed: int) -> AlarmRun:
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, no secret
    cycle_s = RESTART_S * scale / RESTARTS
    floods: list[int] = []
    with running_harness(config_dir) as h:
        time.sleep(WARMUP_S)
        log = h.gateways[GATEWAY].plan.log
        for _ in range(RESTARTS):
            began = time.monotonic()
            h.stop_stack()
            time.sleep(max(MIN_DOWN_S, 10 * scale))
            # A flood a random 1-3 s after the gateway is back (its ticks resume after its last one).
            first = last_tick(log) + 1 + int(rng.uniform(1.0, 3.0) / TICK_S)
            h.plan_anomaly(GATEWAY, _flood(first))
            h.start_stack()
            floods.append(first)
            # Over and cleared (resolved) before the next stop, so the next flood is a new firing.
            passed = first + int(FLOOD_S / TICK_S) + 4
            wait_until(lambda: last_tick(log) > passed, 120, "the flood to pass", 0.5)  # noqa: B023 - waited for here
            time.sleep(max(0.0, cycle_s - (time.monotonic() - began)))
        counted = wind_down(h, {(HOME_GRID, "flooding")}, "stack-restart")
        flood_ts = [_tick_ts(h, f) for f in floods]
        recorded = firings(h, FLOOD_FP)
        latency = flood_latencies(recorded, [t for t in flood_ts if t is not None])
        muted = muted_at_reading(recorded, [t for t in flood_ts if t is not None])
        cases = _cases(h)
    opened = [f for f in recorded if not f.muted and f.case_id is not None]
    return AlarmRun(
        counted,
        seed,
        latency + [None] * flood_ts.count(None),
        checks={
            # Three floods, three firings that opened or joined a case; joined, they make one case.
            "three_flood_firings_with_case": len(opened) == RESTARTS,
            "floods_not_inhibited_at_their_reading": muted == [False] * RESTARTS,
            "one_flooding_case": cases.count((HOME_GRID, "flooding")) == 1,
            "no_device_offline_case": not any(c == "device_offline" for _, c in cases),
            "flood_within_1s": all(v is not None and v <= LATENCY_BOUND_MS for v in latency),
        },
        details={
            "restarts": RESTARTS,
            "flood_firings": len(opened),
            "flood_firings_muted": sum(f.muted for f in recorded),
            "flooding_cases": cases.count((HOME_GRID, "flooding")),
            "device_offline_cases": sum(c == "device_offline" for _, c in cases),
        },
    )


ALARM_SCENARIOS: dict[str, Callable[[Path, float, int], AlarmRun]] = {
    "flaky-link": flaky_link,
    "stack-restart": stack_restart,
}
