"""What the soak samples: process memory, the broker's stored messages, ingest's metrics, the alert
service's progress, and a probe reading's latency to the store and to a case."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from cases.models import Evidence
from common.heartbeat import read_heartbeats
from contract import Topic, TopicKind
from yiwang.bench.ingest import FIELD, MEASUREMENT
from yiwang.servers import influx_query

PROBE_GATEWAY, PROBE_DEVICE = "gw-probe", "wl-probe"
FIRE, CLEAR = 80.0, 10.0  # the probe's levels; the load stays around 5 cm and never fires
PROBE_TIMEOUT_S = 30.0


class SysWatcher:
    """The broker's count of stored messages, from ``$SYS`` (Mosquitto publishes it every
    ``sys_interval`` seconds)."""

    TOPICS = ("$SYS/broker/store/messages/count", "$SYS/broker/messages/stored")

    def __init__(self, port: int) -> None:
        self.stored: int | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-sys-{os.getpid()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        for topic in self.TOPICS:
            self.client.subscribe(topic, qos=0)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # The first topic is the current name; the second its deprecated alias in older Mosquittos.
        if msg.topic == self.TOPICS[0] or self.stored is None:
            with contextlib.suppress(ValueError):
                self.stored = int(msg.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Probe:
    """One reading at a time on a gateway of its own: how long until InfluxDB serves it, and until
    the alert it raises is evidence on a case."""

    def __init__(self, port: int, url: str, database: str, db: Engine) -> None:
        self._url, self._database, self._db = url, database, db
        self._topic = Topic("bench", PROBE_GATEWAY, TopicKind.TELEMETRY).path
        self._seq = self._last_ts = 0
        self.readings = self.timeouts = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-probe-{os.getpid()}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _publish(self, level: float) -> int:
        self._seq += 1
        ts = self._last_ts = max(self._last_ts + 1, int(time.time() * 1000))
        reading = {"device": PROBE_DEVICE, "ts": ts, "values": {FIELD: level}}
        doc = json.dumps({"seq": self._seq, "readings": [reading]})
        self.client.publish(self._topic, doc, qos=1).wait_for_publish(10)
        self.readings += 1
        return ts

    def _stored(self, ts: int) -> bool:
        # Constants and our own integer only in the statement.
        where = f"\"device\"='{PROBE_DEVICE}' AND time = {ts}ms"
        statement = f'SELECT count("{FIELD}") FROM "{MEASUREMENT}" WHERE {where}'  # noqa: S608
        return bool(influx_query(self._url, statement, self._database)[0].get("series"))

    def _evidence(self) -> int:
        try:
            with self._db.connect() as conn:
                found = conn.execute(
                    select(func.max(Evidence.id)).where(Evidence.device == PROBE_DEVICE)
                ).scalar()
        except OperationalError:  # SQLite busy with the alert service's commit: ask again
            return -1
        return int(found or 0)

    def measure(self) -> tuple[float | None, float | None]:
        """(ms until stored, ms until case evidence); None for what did not happen in 30 s."""
        before = self._evidence()
        while before < 0:
            time.sleep(0.02)
            before = self._evidence()
        started = time.perf_counter()
        ts = self._publish(FIRE)
        store_ms = case_ms = None
        while (store_ms is None or case_ms is None) and time.perf_counter() - started < PROBE_TIMEOUT_S:
            if store_ms is None and self._stored(ts):
                store_ms = (time.perf_counter() - started) * 1000
            if case_ms is None and self._evidence() > before:
                case_ms = (time.perf_counter() - started) * 1000
            time.sleep(0.02)
        if store_ms is None or case_ms is None:
            self.timeouts += 1
        self._publish(CLEAR)  # resolves the alert, so the next probe fires a new one
        return store_ms, case_ms

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rss_mb(pid: int | None) -> float | None:
    """Resident set of a process in MB (VmRSS), None once it is gone."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def metric(text: str, name: str) -> float | None:
    """One unlabelled sample from a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def alerts_processed(db: Engine) -> tuple[int, float]:
    """Messages the alert service evaluated, and when it said so (its heartbeat, every 5 s)."""
    beats = [b for b in read_heartbeats(db) if b.service == "alerts"]
    if not beats:
        return 0, 0.0
    return sum(int(b.detail.get("messages", 0)) for b in beats), max(b.last_seen.timestamp() for b in beats)
