"""One small function per fault: inject it, hold it for its (scaled) duration, heal it.

Durations are the issue's at ``scale=1``; ``--scale 0.1`` turns a 60 s outage into 6 s for CI. The
alert timer scenario keeps its 20 s (the rule's own ``for`` is 60 s and is not ours to scale).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from yiwang.chaos.backlog import alert_status, in_between, spooled, stored_readings
from yiwang.chaos.harness import Harness
from yiwang.chaos.power import holds_unsynced
from yiwang.chaos.processes import wait_until
from yiwang.chaos.upgrade_scenarios import agent_upgrade, agent_upgrade_broken

SKEW_MS = 10 * 60 * 1000


def _hold(seconds: float) -> None:
    time.sleep(max(1.0, seconds))


def broker_kill(h: Harness, scale: float) -> None:
    h.broker.halt(kill=True)
    _hold(5 * scale)
    backlog = len(spooled(h))  # what the gateways measured while the broker was gone
    h.fault = {"spooled_at_restart": backlog}
    h.fault_landed = backlog > 0
    h.broker.start()


def ingest_kill(h: Harness, scale: float) -> None:
    # Mid-batch, provably: ingest paused while a backlog builds up; then the store paused too, so
    # when ingest takes the backlog its write hangs (a write times out after 10 s, we wait 1 s) and
    # the batch cannot be acknowledged (ingest acks only once the store, its spool or the dead
    # letters took it). Killed there, ingest leaves the whole backlog to the broker's redelivery.
    h.ingest.signal(signal.SIGSTOP)
    _hold(5 * scale)
    stored = stored_readings(h)  # with ingest paused, nothing more reaches the store
    influxd = h.influx.pid
    assert influxd is not None
    os.kill(influxd, signal.SIGSTOP)
    try:
        h.ingest.signal(signal.SIGCONT)
        time.sleep(1.0)
        h.ingest.halt(kill=True)
        unacked = in_between(h, lambda: stored)
    finally:
        os.kill(influxd, signal.SIGCONT)
    h.fault = {"unacknowledged_at_kill": unacked}
    h.fault_landed = unacked > 0
    _hold(2 * scale)
    h.restart_service(h.ingest)


def alerts_kill(h: Harness, scale: float) -> None:
    time.sleep(20)  # the device.unavailable alert is pending (for: 60 s) when the worker dies
    status = alert_status(h, "sm-0301", "device-unavailable")
    h.alerts.halt(kill=True)
    h.fault = {"alert_at_kill": status}
    h.fault_landed = status == "pending"
    _hold(5 * scale)
    h.restart_service(h.alerts)


def influx_down(h: Harness, scale: float) -> None:
    fell = h.tick_at(0)
    h.influx.halt(kill=True)
    _hold(60 * scale)
    # Readings produced since the fall that left the gateways: they wait in the broker or ingest.
    waiting = in_between(h, None, since_tick=fell)
    h.fault = {"waiting_for_the_store": waiting}
    h.fault_landed = waiting > 0
    h.influx.start()


def postgres_restart(h: Harness, scale: float) -> None:
    h.postgres.halt(kill=True)
    _hold(5 * scale)
    h.postgres.start()


def network_cut(h: Harness, scale: float) -> None:
    # A blackhole: no FIN, no RST; each end must notice by keep-alive (the broker after 1.5 × it,
    # when it sends the last will; the gateway after an unanswered PINGREQ), as after a 5G drop.
    keepalive = max(run.plan.keepalive_s for run in h.gateways.values())
    before = h.proxy.accepted
    h.proxy.blackhole()
    _hold(max(180 * scale, 3 * keepalive))
    held = h.proxy.held
    h.proxy.restore()
    wait_until(lambda: h.proxy.accepted >= before + len(h.gateways), 60, "the gateways to reconnect")
    # Each gateway gave up its half-open connection by itself and tried again into the void.
    h.fault = {"connections_tried_during_cut": held, "reconnected": h.proxy.accepted - before}
    h.fault_landed = held >= len(h.gateways)


def slow_consumer(h: Harness, scale: float) -> None:
    h.ingest.signal(signal.SIGSTOP)
    _hold(30 * scale)
    waiting = in_between(h, lambda: stored_readings(h))
    h.fault = {"waiting_for_ingest": waiting}
    h.fault_landed = waiting > 0
    h.ingest.signal(signal.SIGCONT)


def poison(h: Harness, scale: float) -> None:
    with h.poison(per_s=1.0):
        _hold(max(5.0, 30 * scale))  # a few poison messages even at the shortest scale
    h.fault = {"poison_sent": h.poison_sent}
    h.fault_landed = h.poison_sent >= 3


def clock_skew(h: Harness, scale: float) -> None:
    _hold(20 * scale)  # the skew is in the plan: gw-01 runs 10 min ahead, gw-02 10 min behind


POWER_GATEWAY = "gw-02"


def power_cut(h: Harness, scale: float) -> None:
    """The site loses power: the modem first (the link goes silent, the spool grows on time-based
    fsyncs only), then the gateway, whose spool comes back as it was at its last fsync."""
    link = h.links[POWER_GATEWAY]
    spool = h.gateways[POWER_GATEWAY].plan.spool
    for _ in range(3):
        link.cut()
        time.sleep(2.2)  # a few appends, each fsynced only when the last fsync is ≥ 1 s old
        # Cut between an unsynced append and the next fsync: a cut just after an fsync takes
        # nothing, and three such cuts in a row (a busy CI machine) would prove nothing.
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: holds_unsynced(spool), 3.0, "an unsynced append", interval=0.01)
        h.cut_power(POWER_GATEWAY)
        link.restore()
        time.sleep(1)
        h.start_gateway(POWER_GATEWAY)
        _hold(5 * scale)
    cuts = h.power_cuts[POWER_GATEWAY]
    h.fault = {
        "cuts": len(cuts),
        "ticks_after_last_fsync": [c.last_tick - c.through_tick for c in cuts],
        "chunks_lost": sum(c.chunks_lost for c in cuts),
        "acks_undone": sum(c.acks_undone for c in cuts),
    }
    h.fault_landed = any(c.landed for c in cuts)


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
    # Gateways with a link of their own (``h.links``), cut without cutting the others.
    own_links: tuple[str, ...] = ()


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
        Scenario(
            "power-cut",
            power_cut,
            extra_cases=frozenset({("g-middle", "device_offline")}),
            own_links=(POWER_GATEWAY,),
        ),
        Scenario("clock-skew", clock_skew, skew_ms={"gw-01": SKEW_MS, "gw-02": -SKEW_MS}),
        Scenario("agent-upgrade", agent_upgrade),
        Scenario("agent-upgrade-broken", agent_upgrade_broken),
    )
}
