"""Alert latency under load: ≥ 10,000 readings/s across 1,000 devices with 5 rules each.

A generated community of 10 gateways × 100 water-level sensors reports 10 times a second (clean
noise around 5 cm). At known times one sensor jumps to 80 cm for a moment. We measure, per
injection, published → alert firing (from the alert history) and published → case committed (by
polling the case table), count detections and false alerts, and measure the broker's own delivery
of the same messages to a plain subscriber as the ceiling.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import AlertHistory
from cases.models import Case, Evidence
from common.db import make_engine
from common.heartbeat import read_heartbeats
from contract import Topic, TopicKind
from yiwang.bench.stack import running_stack

GATEWAYS, DEVICES_PER_GATEWAY, GRIDS = 10, 100, 10
THRESHOLD_RULE = "bench-flooding"
BENCH_RULES: list[dict[str, Any]] = [
    {"id": THRESHOLD_RULE, "threshold": {"field": "level_cm", "op": ">=", "value": 50, "clear": 40}},
    {
        "id": "bench-n-of-m",
        "threshold": {"field": "level_cm", "op": ">=", "value": 45, "n_of_m": {"n": 3, "m": 5}},
    },
    {"id": "bench-rising", "rate": {"field": "level_cm", "window_s": 30, "op": ">=", "per_minute": 200}},
    {
        "id": "bench-anomaly",
        "anomaly": {
            "field": "level_cm",
            "method": "mad",
            "window": 60,
            "warmup": 30,
            "threshold": 12,
            "min_spread": 0.5,
        },
        "for_s": 5,
    },
    {"id": "bench-silent", "stale": {"factor": 6, "min_s": 60}, "category": "device_offline"},
]


def _device(gateway: int, index: int) -> str:
    return f"wl-{gateway:02d}{index:02d}"


def write_config(source: Path, target: Path) -> None:
    """The bench community, the shipped sensor types and categories, and five rules per device."""
    shutil.copytree(source / "sensor-types", target / "sensor-types")
    for name in ("categories.yaml", "calendar.yaml", "organisation.yaml"):  # what the case policy loads
        shutil.copy(source / name, target / name)
    (target / "communities").mkdir()
    (target / "rules").mkdir()
    community = {
        "id": "bench",
        "name": "bench",
        "grids": [{"id": f"g-{g:02d}", "name": f"grid {g}"} for g in range(GRIDS)],
        "gateways": [
            {
                "id": f"gw-{gw:02d}",
                "devices": [
                    {
                        "id": _device(gw, i),
                        "type": "water.level@1",
                        "grid": f"g-{(gw * DEVICES_PER_GATEWAY + i) % GRIDS:02d}",
                    }
                    for i in range(DEVICES_PER_GATEWAY)
                ],
            }
            for gw in range(GATEWAYS)
        ],
    }
    (target / "communities" / "bench.yaml").write_text(yaml.safe_dump(community))
    rules = [
        {
            "version": 1,
            "scope": {"type": "water.level@1"},
            "severity": "critical",
            "category": "flooding",
            **r,
        }
        for r in BENCH_RULES
    ]
    (target / "rules" / "bench.yaml").write_text(yaml.safe_dump({"rules": rules}))


class Load(threading.Thread):
    """Publishes every gateway's readings ``hz`` times a second; injects spikes on request."""

    def __init__(self, port: int, hz: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self._hz, self._halt = hz, stop
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-load-{port}")
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._rng = random.Random(7)
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self.injected: dict[str, float] = {}  # device -> wall time its spike was published
        self.readings = self.messages = 0
        self.started = self.finished = 0.0

    def inject(self, device: str) -> None:
        with self._lock:
            self._pending[device] = 80.0

    def run(self) -> None:
        seq = [0] * GATEWAYS
        period = 1 / self._hz
        self.started = next_at = time.perf_counter()
        while not self._halt.is_set():
            with self._lock:
                spikes, self._pending = self._pending, {}
            for gw in range(GATEWAYS):
                ts = int(time.time() * 1000)
                readings = []
                for i in range(DEVICES_PER_GATEWAY):
                    device = _device(gw, i)
                    level = spikes.get(device, 5.0 + self._rng.uniform(-0.5, 0.5))
                    readings.append({"device": device, "ts": ts, "values": {"level_cm": round(level, 2)}})
                seq[gw] += 1
                topic = Topic("bench", f"gw-{gw:02d}", TopicKind.TELEMETRY).path
                self.client.publish(topic, json.dumps({"seq": seq[gw], "readings": readings}), qos=1)
                self.readings += len(readings)
                self.messages += 1
                for device in spikes:
                    if device.startswith(f"wl-{gw:02d}"):
                        self.injected[device] = time.time()
            next_at += period
            time.sleep(max(0.0, next_at - time.perf_counter()))
        self.finished = time.perf_counter()
        self.client.disconnect()
        self.client.loop_stop()


def _pct(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": float("nan"), "p99": float("nan")}
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


def _wait_processed(db: Any, published: int, timeout: float = 15.0) -> int:
    """Messages the alert service had processed once it caught up (from its heartbeat counters)."""
    deadline = time.time() + timeout
    processed = 0
    while time.time() < deadline:
        processed = sum(
            int(b.detail.get("messages", 0)) for b in read_heartbeats(db) if b.service == "alerts"
        )
        if processed >= published:
            break
        time.sleep(0.5)
    return processed


def run(
    config_dir: Path, *, injections: int = 20, warmup_s: float = 10.0, hz: float = 10.0
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-alerts-") as tmp:
        bench_config = Path(tmp) / "config"
        write_config(config_dir, bench_config)
        env = {"YIWANG_CASE_JOIN_WINDOW_MINUTES": "0"}  # each injection opens its own case
        with running_stack(bench_config, services=("alerts",), extra_env=env) as stack:
            time.sleep(2.0)  # the alert service subscribes
            stop = threading.Event()
            load = Load(stack.mqtt_port, hz, stop)
            load.start()
            db = make_engine(stack.database_url)
            seen_cases: dict[str, float] = {}
            rng = random.Random(11)
            targets = rng.sample(
                [_device(g, i) for g in range(GATEWAYS) for i in range(DEVICES_PER_GATEWAY)], injections
            )
            try:
                time.sleep(warmup_s)  # windows and baselines warm up on clean data
                last_id = 0
                for device in targets:
                    load.inject(device)
                    deadline = time.time() + 2.0
                    while time.time() < deadline:
                        with Session(db) as session:
                            rows = session.execute(
                                select(Case.id, Evidence.device).join(Evidence).where(Case.id > last_id)
                            ).all()
                        for case_id, dev in rows:
                            last_id = max(last_id, case_id)
                            seen_cases.setdefault(dev, time.time())
                        time.sleep(0.01)
            finally:
                stop.set()
                load.join(10)
            published = load.messages
            processed = _wait_processed(db, published)
            with Session(db) as session:
                history = session.execute(
                    select(
                        AlertHistory.fingerprint,
                        AlertHistory.rule_id,
                        AlertHistory.at,
                        AlertHistory.observed_at,
                    ).where(AlertHistory.kind == "firing")
                ).all()
            db.dispose()
    injected = load.injected
    fired = {
        fp.split("|")[2]: (at.timestamp() - observed.timestamp()) * 1000
        for fp, rule, at, observed in history
        if rule == THRESHOLD_RULE
    }
    detected = [d for d in injected if d in fired and d in seen_cases]
    false_alerts = sorted({fp for fp, _rule, _at, _obs in history if fp.split("|")[2] not in injected})
    duration = load.finished - load.started
    case_ms = [(seen_cases[d] - injected[d]) * 1000 for d in detected]
    return {
        "area": "alerts",
        "broker": stack.broker,
        "db": "sqlite",
        "devices": GATEWAYS * DEVICES_PER_GATEWAY,
        "rules_per_device": len(BENCH_RULES),
        "background_readings_per_s": round(load.readings / duration),
        # The ceiling: everything the load generator published (and the broker delivered) was evaluated.
        "messages_published": published,
        "messages_evaluated": processed,
        "evaluated_ratio": round(processed / published, 4) if published else 0.0,
        "injected": len(injected),
        "detected": len(detected),
        "false_alerts": len(false_alerts),
        "alert_firing_ms": _pct([fired[d] for d in detected]),
        "p50_ms": _pct(case_ms)["p50"],
        "p99_ms": _pct(case_ms)["p99"],
    }
