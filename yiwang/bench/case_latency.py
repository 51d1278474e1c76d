"""Case latency: from a gateway's PUBLISH to the evidence visible through the API.

Each trial raises wl-01 above the flooding threshold (the alert fires and its evidence joins the grid's
open case), waits until ``GET /api/v1/cases/{id}`` shows it, then drains the water (the alert resolves)
and waits for that too. The ceiling is the broker's own delivery latency of the very same messages to
a plain subscriber, measured in the same run.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import Topic, TopicKind
from yiwang.bench.stack import running_stack
from yiwang.polling import first_answer

TOPIC = Topic("zhuganxiang", "gw-01", TopicKind.TELEMETRY).path


class _Probe:
    """A subscriber that records when each seq arrived: the broker's delivery ceiling."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[int, float] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{port}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(TOPIC, qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        seq = json.loads(msg.payload)["seq"]
        with self._cond:
            self.arrived[seq] = time.perf_counter()
            self._cond.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


def _wait(check: Any, timeout: float = 30.0) -> Any:
    result = first_answer(check, timeout, interval_s=0.01)  # a short interval: the latency is measured
    if result:
        return result
    raise TimeoutError(f"the platform did not react within {timeout:.0f} s")


def _trial(http: httpx.Client, publisher: mqtt.Client, seq: int, level: float) -> tuple[float, float]:
    """Publish one reading; (milliseconds until the API shows its effect, perf_counter at publish)."""
    doc = {
        "seq": seq,
        "readings": [{"device": "wl-01", "ts": int(time.time() * 1000), "values": {"level_cm": level}}],
    }
    before = http.get(
        "/api/v1/cases", params={"category": "flooding", "grid": "g-north", "open": True}
    ).json()
    case_ids = [c["id"] for c in before["items"]]
    seen = {cid: len(http.get(f"/api/v1/cases/{cid}").json()["events"]) for cid in case_ids}
    started = time.perf_counter()
    publisher.publish(TOPIC, json.dumps(doc), qos=1).wait_for_publish(10)

    def changed() -> bool:
        cases = http.get(
            "/api/v1/cases", params={"category": "flooding", "grid": "g-north", "open": True}
        ).json()
        for case in cases["items"]:
            events = http.get(f"/api/v1/cases/{case['id']}").json()["events"]
            if len(events) > seen.get(case["id"], 0):
                return True
        return False

    _wait(changed)
    return (time.perf_counter() - started) * 1000, started


def run(config_dir: Path, *, trials: int = 20, embedded_broker: bool = False) -> dict[str, Any]:
    with running_stack(config_dir, embedded_broker=embedded_broker) as stack:
        http = httpx.Client(
            base_url=stack.base_url, headers={"Authorization": f"Bearer {stack.token}"}, timeout=10
        )
        _wait(lambda: http.get("/healthz").status_code == 200, timeout=60)
        probe = _Probe(stack.mqtt_port)
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-gw-{stack.mqtt_port}")
        publisher.connect("127.0.0.1", stack.mqtt_port)
        publisher.loop_start()
        latencies: list[float] = []
        ceilings: list[float] = []
        try:
            for i in range(trials):
                for offset, level in ((0, 72.0), (1, 10.0)):  # fire, then resolve
                    seq = 2 * i + offset + 1
                    latency_ms, started = _trial(http, publisher, seq, level)
                    latencies.append(latency_ms)
                    _wait(lambda s=seq: s in probe.arrived)
                    ceilings.append((probe.arrived[seq] - started) * 1000)
        finally:
            publisher.disconnect()
            publisher.loop_stop()
            probe.close()
            http.close()
        latency, ceiling = _percentiles(latencies), _percentiles(ceilings)
        return {
            "area": "case-latency",
            "broker": stack.broker,
            "stores": "sqlite",
            "transitions": len(latencies),
            "latency_ms": latency,
            "ceiling_broker_delivery_ms": ceiling,
            "ceiling_to_latency_p50": round(ceiling["p50"] / latency["p50"], 4),
        }
