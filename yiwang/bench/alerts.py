"""Alert latency under load: 10,200 readings/s of realistic background and 600 injected incidents.

The scenario (:mod:`yiwang.bench.alert_scenario`) is a community of 10 gateways with 620 water-level
sensors, 400 gas detectors and 50 cameras, each sensor reporting 10 times a second, and six rules,
one of each kind the shipped rules use: threshold with hysteresis, N-of-M, rate of change, rolling
median/MAD with `for`, deadman and an event rule. Its background drifts, follows a daily rhythm,
comes near the thresholds and turns back and throws the odd outlier, so a wrong rule raises false
alerts; 100 incidents of each kind are injected, each on a device of its own, each with the moment
its alert becomes due.

The real alerts service runs against a real broker. A firing counts once its case is committed: the
bench polls the alert history and takes the time it first sees the row, so after the commit. The
latency of an injection runs from the publish of the reading that makes its alert due (for a
deadman: its last reading's publish plus the silence the rule allows) to that moment; a miss counts
as a latency beyond every limit. The ceiling is the broker's own delivery of the same messages to a
plain subscriber, in the same run.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.models import AlertHistory
from common.db import make_engine
from common.heartbeat import read_heartbeats
from contract import Topic, TopicKind, subscription
from yiwang.bench import checkpoint_stall
from yiwang.bench.alert_scenario import (
    COMMUNITY,
    KINDS,
    Firing,
    Plan,
    Scenario,
    account,
    build,
    percentile,
    rate_due,
    write_config,
)
from yiwang.bench.stack import running_stack

POLL_S = 0.01  # how often the bench looks for newly committed firings
GRACE_S = 5.0  # a firing this long after its incident ended still counts for it
DRAIN_S = 15.0  # after the last tick, how long the service may take to catch up


class Load(threading.Thread):
    """Publishes the scenario tick by tick at its own pace; records when each tick went out."""

    def __init__(self, port: int, scenario: Scenario) -> None:
        super().__init__(daemon=True)
        self._scenario = scenario
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-load-{port}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.tick_at: list[float] = []  # perf_counter when tick k began to go out
        self.tick_ts: list[int] = []  # the timestamp tick k's readings carry (epoch ms)
        self.sent: dict[tuple[str, int], float] = {}  # (gateway, seq) -> perf_counter of the publish
        self.readings = self.messages = 0
        self.behind_max_s = 0.0
        self.started = self.finished = 0.0

    def run(self) -> None:
        scenario, hz = self._scenario, self._scenario.plan.hz
        seq: dict[str, int] = {}
        self.started = time.perf_counter()
        for tick in range(scenario.ticks):
            due = self.started + tick / hz
            lag = time.perf_counter() - due
            if lag < 0:
                time.sleep(-lag)
            self.behind_max_s = max(self.behind_max_s, lag)
            now = time.perf_counter()
            self.tick_at.append(now)
            ts = max(int(time.time() * 1000), self.tick_ts[-1] if self.tick_ts else 0)
            self.tick_ts.append(ts)
            for gateway, readings in scenario.readings(tick).items():
                body = [{"device": d, "ts": ts, "values": {name: v}} for d, name, v in readings]
                self._publish(gateway, TopicKind.TELEMETRY, "readings", body, seq)
                self.readings += len(body)
            for gateway, events in scenario.events(tick).items():
                body = [
                    {
                        "device": camera,
                        "ts": ts,
                        "id": str(uuid.uuid4()),
                        "kind": "camera.motion",
                        "phase": "instant",
                        "attrs": {"zone": zone},
                    }
                    for camera, zone in events
                ]
                self._publish(gateway, TopicKind.EVENT, "events", body, seq)
        self.finished = time.perf_counter()
        self.client.disconnect()
        self.client.loop_stop()

    def _publish(
        self, gateway: str, kind: TopicKind, key: str, body: list[dict[str, Any]], seq: dict[str, int]
    ) -> None:
        seq[gateway] = n = seq.get(gateway, 0) + 1
        topic = Topic(COMMUNITY, gateway, kind).path
        self.sent[(gateway, n)] = time.perf_counter()
        self.client.publish(topic, json.dumps({"seq": n, key: body}), qos=1)
        self.messages += 1


class Probe:
    """A plain subscriber to the same messages: the broker's delivery latency is the ceiling."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[tuple[str, int], float] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{port}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        for kind in (TopicKind.TELEMETRY, TopicKind.EVENT):
            self.client.subscribe(subscription(kind, community=COMMUNITY), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        at = time.perf_counter()
        head = msg.payload[: msg.payload.index(b",")]  # the publisher writes {"seq": n, ... first
        self.arrived[(Topic.parse(msg.topic).gateway, int(head.split(b":")[1]))] = at

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class FiringWatch:
    """Firings with their committed case, each timed when the bench first sees it (after the commit)."""

    def __init__(self, db: Engine) -> None:
        self._db, self._last_id = db, 0
        self.firings: list[Firing] = []
        self.without_case = 0

    def poll(self) -> None:
        with Session(self._db) as session:
            rows = session.execute(
                select(AlertHistory.id, AlertHistory.fingerprint, AlertHistory.rule_id, AlertHistory.case_id)
                .where(AlertHistory.kind == "firing", AlertHistory.id > self._last_id)
                .order_by(AlertHistory.id)
            ).all()
        seen = time.perf_counter()
        for row_id, fp, rule, case_id in rows:
            self._last_id = max(self._last_id, row_id)
            if case_id is None:
                self.without_case += 1  # silenced or inhibited: no case, never an injection's
                continue
            self.firings.append(Firing(rule, fp.split("|", 2)[2], seen))


def _processed(db: Engine) -> int:
    return sum(int(b.detail.get("messages", 0)) for b in read_heartbeats(db) if b.service == "alerts")


def _pauses(db: Engine) -> dict[str, Any]:
    """The alert service's own account of what held its stream's thread (its last heartbeat)."""
    return next((b.detail.get("pauses", {}) for b in read_heartbeats(db) if b.service == "alerts"), {})


def run(config_dir: Path, *, plan: Plan | None = None) -> dict[str, Any]:
    plan = plan or Plan()
    scenario = build(plan)
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-alerts-") as tmp:
        bench_config = Path(tmp) / "config"
        write_config(config_dir, bench_config, scenario)
        checkpoint = checkpoint_stall.run(bench_config, scenario)  # before the stack: a quiet machine
        env = {"YIWANG_CASE_JOIN_WINDOW_MINUTES": "0"}  # each firing opens its own case
        with running_stack(bench_config, services=("alerts",), extra_env=env) as stack:
            time.sleep(2.0)  # the alert service subscribes
            db = make_engine(stack.database_url)
            probe = Probe(stack.mqtt_port)
            load = Load(stack.mqtt_port, scenario)
            watch = FiringWatch(db)
            load.start()
            try:
                while load.is_alive():
                    watch.poll()
                    time.sleep(POLL_S)
                deadline = time.perf_counter() + DRAIN_S
                while time.perf_counter() < deadline and _processed(db) < load.messages:
                    watch.poll()
                    time.sleep(POLL_S)
                processed = _processed(db)
                grace_end = time.perf_counter() + GRACE_S  # late firings still count (as misses' hits)
                while time.perf_counter() < grace_end:
                    watch.poll()
                    time.sleep(POLL_S)
                pauses = _pauses(db)
            finally:
                probe.close()
                db.dispose()

    tick_at = load.tick_at

    def to_clock(seconds: float) -> float:
        tick = max(0, round(seconds * plan.hz))
        if tick < len(tick_at):
            return tick_at[tick]
        return tick_at[-1] + (tick - len(tick_at) + 1) / plan.hz

    injections = [
        rate_due(scenario, inj, load.tick_ts) if inj.kind == "rate" else inj for inj in scenario.injections
    ]
    tally = account(injections, watch.firings, to_clock, grace_s=GRACE_S)
    latencies = [ms for t in tally.values() for ms in t.latencies_ms]
    ceiling = [(probe.arrived[key] - at) * 1000 for key, at in load.sent.items() if key in probe.arrived]
    duration = load.finished - load.started
    return {
        "area": "alerts",
        "broker": stack.broker,
        "db": "sqlite",
        "devices": len(scenario.devices),
        "rules": len(KINDS),
        "duration_s": round(duration, 1),
        "background_readings_per_s": round(load.readings / duration),
        "load_behind_max_ms": round(load.behind_max_s * 1000, 1),
        "messages_published": load.messages,
        "messages_evaluated": processed,
        "evaluated_ratio": round(processed / load.messages, 4) if load.messages else 0.0,
        "injected": sum(t.injected for t in tally.values()),
        "detected": sum(t.detected for t in tally.values()),
        "missed": sum(t.missed for t in tally.values()),
        "false_alerts": sum(t.false_alerts for t in tally.values()),
        "firings_without_case": watch.without_case,
        # The first few false alerts, to look into: rule, device, seconds into the run.
        "false_alert_examples": [
            f"{f.rule} {f.subject} {f.at - load.started:.1f}s"
            for f in sorted((f for t in tally.values() for f in t.false), key=lambda f: f.at)[:10]
        ],
        # Over every injection; a miss is a latency beyond any limit (null when a percentile is one).
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "by_rule_kind": {
            kind: {
                "injected": t.injected,
                "detected": t.detected,
                "missed": t.missed,
                "false_alerts": t.false_alerts,
                "p50_ms": percentile(t.latencies_ms, 0.5),
                "p99_ms": percentile(t.latencies_ms, 0.99),
            }
            for kind, t in tally.items()
        },
        "ceiling_p50_ms": round(statistics.median(ceiling), 1) if ceiling else None,
        "ceiling_p99_ms": percentile(ceiling, 0.99),
        "ceiling_delivered": f"{len(ceiling)}/{len(load.sent)}",
        "poll_resolution_ms": POLL_S * 1000,
        "service_pauses": pauses,
        **checkpoint,
    }
