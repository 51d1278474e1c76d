"""A simulated gateway process for chaos runs: the edge's real Spool and GatewayPublisher, a
deterministic source, and a log of what the spool accepted.

Each tick every device reports once (all at the tick's timestamp, from the gateway's own clock,
which may run ``skew_ms`` off); a device's value is its baseline unless the plan puts an anomaly on
that tick. A tick is logged only after ``append`` returned, so the log lists exactly what the gateway
took responsibility for: a SIGKILL between append and log makes the store hold *more* than the log,
never less. Restarted after a kill, the gateway resumes after its last logged tick; its seq lives in
the spool. When the stop file appears it stops producing, drains the spool and logs ``drained``.
SIGTERM is a planned stop, as for the edge agent: it stops producing and the publisher's ``stop``
says so on the retained state topic (what the edge publishes on a clean stop), then disconnects.

Usage: ``python -m yiwang.chaos.gateway PLAN.json``
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.messages import Event, Reading
from contract.profiles import Scalar
from edge.mqtt_session import MqttOptions
from edge.publisher import GatewayPublisher
from yiwang.chaos.power import FsyncedSpool

SYNC_INTERVAL_S = 1.0  # the edge's default


@dataclass(frozen=True, slots=True)
class Anomaly:
    """``field`` of ``device`` reads ``value`` on ticks ``first``..``last`` (inclusive)."""

    device: str
    field: str
    value: Scalar
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Plan:
    community: str
    gateway: str
    port: int
    spool: Path
    log: Path
    stop_file: Path
    tick_s: float
    skew_ms: int
    devices: dict[str, dict[str, Scalar]]
    anomalies: list[Anomaly]
    events: list[tuple[int, str, str]]  # (tick, device, kind)
    keepalive_s: int = 5
    """Short, so a blackholed link is noticed within a scaled-down cut (production: 30 s)."""

    def to_json(self) -> str:
        doc = {
            **{
                k: getattr(self, k)
                for k in ("community", "gateway", "port", "tick_s", "skew_ms", "devices", "keepalive_s")
            },
            **{k: str(getattr(self, k)) for k in ("spool", "log", "stop_file")},
            "anomalies": [_fields(a) for a in self.anomalies],
            "events": self.events,
        }
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        doc: dict[str, Any] = json.loads(text)
        return cls(
            community=doc["community"],
            gateway=doc["gateway"],
            port=int(doc["port"]),
            spool=Path(doc["spool"]),
            log=Path(doc["log"]),
            stop_file=Path(doc["stop_file"]),
            tick_s=float(doc["tick_s"]),
            skew_ms=int(doc["skew_ms"]),
            devices=doc["devices"],
            anomalies=[Anomaly(**a) for a in doc["anomalies"]],
            events=[(int(t), str(d), str(k)) for t, d, k in doc["events"]],
            keepalive_s=int(doc["keepalive_s"]),
        )

    def values(self, device: str, tick: int) -> dict[str, Scalar]:
        values = dict(self.devices[device])
        for a in self.anomalies:
            if a.device == device and a.first <= tick <= a.last:
                values[a.field] = a.value
        return values


def _fields(anomaly: Anomaly) -> dict[str, Any]:
    return {name: getattr(anomaly, name) for name in Anomaly.__slots__}


def last_tick(log: Path) -> int:
    """The last tick the gateway logged (-1 before its first)."""
    last = -1
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts and parts[0] == "T" and len(parts) == 3:
                last = max(last, int(parts[1]))
    return last


def run(plan: Plan, stop: threading.Event) -> None:
    """Produce until the stop file appears, drain, stay connected; return on ``stop`` (a clean stop)."""

    def clock() -> int:
        return time.time_ns() // 1_000_000 + plan.skew_ms

    plan.spool.parent.mkdir(parents=True, exist_ok=True)
    spool = FsyncedSpool(plan.spool, max_bytes=1024**3, sync_interval_s=SYNC_INTERVAL_S, clock=clock)
    tick = last_tick(plan.log) + 1
    spool.appended_through = tick - 1  # earlier ticks are in the spool, delivered, or lost to a power cut
    # A short reconnect back-off: a healed fault should be exercised within the run, not minutes later.
    options = MqttOptions(
        host="127.0.0.1",
        port=plan.port,
        keepalive_s=plan.keepalive_s,
        reconnect_min_s=0.2,
        reconnect_max_s=2,
    )
    publisher = GatewayPublisher(plan.community, plan.gateway, spool, [], options, clock=clock)
    publisher.start()
    try:
        with plan.log.open("a", encoding="utf-8") as log:
            next_at = time.monotonic()
            while not plan.stop_file.exists() and not stop.is_set():
                ts = clock()
                for at, device, kind in plan.events:
                    if at == tick:
                        event_id = uuid.uuid4()
                        event = Event(device=device, ts=ts, id=event_id, kind=kind, phase="start", attrs={})
                        publisher.publish_events([event])
                        log.write(f"E {tick} {device} {ts} {kind}\n")
                readings = [Reading(device=d, ts=ts, values=plan.values(d, tick)) for d in plan.devices]
                spool.begin_tick(tick)
                publisher.publish_readings(readings)
                log.write(f"T {tick} {ts}\n")
                log.flush()
                tick += 1
                next_at += plan.tick_s
                stop.wait(max(0.0, next_at - time.monotonic()))
            while (spool.depth() > 0 or publisher.outstanding) and not stop.is_set():
                publisher.pump()
                stop.wait(0.05)
            if not stop.is_set():
                log.write("drained\n")
                log.flush()
        # Stay connected until stopped: a dropped connection would publish the last will and open a case.
        while not stop.wait(0.5):
            publisher.pump()
    finally:
        publisher.stop()
        spool.close()


def main(plan_path: Path) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    run(Plan.from_json(plan_path.read_text(encoding="utf-8")), stop)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
