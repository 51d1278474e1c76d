"""One small function per fault: inject it, hold it for its (scaled) duration, heal it.

Durations are the issue's at ``scale=1``; ``--scale 0.1`` turns a 60 s outage into 6 s for CI. The
alert timer scenario keeps its 20 s (the rule's own ``for`` is 60 s and is not ours to scale).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from yiwang.chaos.harness import Harness

SKEW_MS = 10 * 60 * 1000


def _hold(seconds: float) -> None:
    time.sleep(max(1.0, seconds))


def broker_kill(h: Harness, scale: float) -> None:
    h.broker.halt(kill=True)
    _hold(5 * scale)
    h.broker.start()


def ingest_kill(h: Harness, scale: float) -> None:
    # Mid-batch: pause ingest so a backlog builds up, let it take the backlog, and kill it while it
    # writes (acknowledged to nobody yet: the broker must redeliver all of it).
    h.ingest.signal(signal.SIGSTOP)
    _hold(5 * scale)
    h.ingest.signal(signal.SIGCONT)
    time.sleep(0.2)
    h.ingest.halt(kill=True)
    _hold(2 * scale)
    h.restart_service(h.ingest)


def alerts_kill(h: Harness, scale: float) -> None:
    time.sleep(20)  # the device.unavailable alert is pending (for: 60 s) when the worker dies
    h.alerts.halt(kill=True)
    _hold(5 * scale)
    h.restart_service(h.alerts)


def influx_down(h: Harness, scale: float) -> None:
    h.influx.halt(kill=True)
    _hold(60 * scale)
    h.influx.start()


def postgres_restart(h: Harness, scale: float) -> None:
    h.postgres.halt(kill=True)
    _hold(5 * scale)
    h.postgres.start()


def network_cut(h: Harness, scale: float) -> None:
    h.proxy.cut()
    _hold(180 * scale)
    h.proxy.restore()


def slow_consumer(h: Harness, scale: float) -> None:
    h.ingest.signal(signal.SIGSTOP)
    _hold(30 * scale)
    h.ingest.signal(signal.SIGCONT)


def poison(h: Harness, scale: float) -> None:
    with h.poison(per_s=1.0):
        _hold(max(5.0, 30 * scale))  # a few poison messages even at the shortest scale


def clock_skew(h: Harness, scale: float) -> None:
    _hold(20 * scale)  # the skew is in the plan: gw-01 runs 10 min ahead, gw-02 10 min behind


def power_cut(h: Harness, scale: float) -> None:
    for _ in range(3):
        h.kill_gateway("gw-02")  # SIGKILL while it appends to its spool every tick
        time.sleep(1)
        h.start_gateway("gw-02")
        _hold(5 * scale)


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Callable[[Harness, float], None]
    skew_ms: dict[str, int] = field(default_factory=dict)
    # (gateway, device, event kind, seconds after the gateways started)
    events: tuple[tuple[str, str, str, float], ...] = ()
    # Cases the fault itself must open: (grid, category). A gateway's last will opens device_offline
    # in its home grid (the grid of its first device).
    extra_cases: frozenset[tuple[str, str]] = frozenset()


WARMUP_S = 14.0  # past Mosquitto's first autosave (10 s), so its persisted sessions exist


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("broker-kill", broker_kill),
        Scenario("ingest-kill", ingest_kill),
        Scenario(
            "alerts-kill",
            alerts_kill,
            events=(("gw-02", "sm-0301", "device.unavailable", WARMUP_S),),
            extra_cases=frozenset({("g-middle", "device_offline")}),
        ),
        Scenario("influx-down", influx_down),
        Scenario("poison", poison),
        Scenario("slow-consumer", slow_consumer),
        Scenario("postgres-restart", postgres_restart),
        Scenario(
            "network-cut",
            network_cut,
            extra_cases=frozenset({("g-north", "device_offline"), ("g-middle", "device_offline")}),
        ),
        Scenario("power-cut", power_cut, extra_cases=frozenset({("g-middle", "device_offline")})),
        Scenario("clock-skew", clock_skew, skew_ms={"gw-01": SKEW_MS, "gw-02": -SKEW_MS}),
    )
}
