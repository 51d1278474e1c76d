"""A hostile gateway cannot grow ingest's memory, the dead-letter store or the series count.

Real Mosquitto, real influxd, ingest as a real process (``python -m yiwang ingest``). For
``HOSTILE_SECONDS`` a hostile gateway publishes at its full fairness budget (``BUDGET_BYTES_PER_S``,
the ``GatewayBudget`` rate ingest is started with, so nothing of it is deferred) a mix of:

(a) telemetry whose device ids are 100 kB of random letters,
(b) telemetry from unknown devices with valid 64-character ids,
(c) events of its registered camera with random (well-formed) kinds,
(d) poison: random bytes, and payloads above the contract's size limit (the broker's own packet
    limit is only a little higher);

while an honest gateway sends five readings a second. Ingest's resident memory, the dead-letter
store's size and InfluxDB's series count must stay within stated bounds, and the honest readings
must keep arriving all along. A second test refuses retained telemetry and events.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import string
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.ingest import conftest as ingest_servers
from tests.platform import Service, wait_for
from yiwang.bench.ingest import subscribe_session
from yiwang.bench.mqttload import RawPublisher
from yiwang.servers import (
    InfluxServer,
    MosquittoServer,
    free_port,
    influx_query,
    unique_name,
)

pytestmark = pytest.mark.integration
# Servers of the test's own, as ingest's fault tests have: a broker configured for ingest, an influxd.
broker, influx = ingest_servers.broker, ingest_servers.influx
ROOT = Path(__file__).resolve().parents[2]

HOSTILE_SECONDS = float(os.environ.get("YIWANG_HOSTILE_SECONDS", "60"))
WARMUP_SECONDS = 5.0
BUDGET_BYTES_PER_S = 1_000_000
"""The hostile gateway's fairness budget (ingest/fairness.py GatewayBudget), and its sending rate."""
HUGE_ID_BYTES = 100_000
OVERSIZE = 262_400
"""Above the contract's 256 KiB payload limit, below the broker's packet limit (broker/mosquitto.py)."""
# Shares of the hostile budget: (a) huge ids, (b) unknown valid ids, (c) random kinds, (d) poison.
SHARES = {"huge_ids": 0.6, "unknown_ids": 0.15, "random_kinds": 0.15, "poison": 0.1}
RSS_GROWTH_BOUND = 20 * 1024**2
"""Ingest's resident memory may grow by at most this much over its warmed-up size during the attack:
well below what the attack sends as huge ids alone (~36 MB a minute)."""
DEAD_LETTER_BUDGET = 2_000_000
"""Size budget ingest is given for its dead-letter store (payload + reason + topic bytes)."""
DEAD_LETTERS_PER_S = 200
"""The hostile gateway's dead-letter rate cap: high enough that the store reaches its budget, so both
the cap and the retention are at work."""
HONEST_PER_S = 5
HONEST_MAX_LAG_S = 10.0
"""An honest reading is stored within this long of being sent, attack or not."""

T0 = 1764183600000
COMMUNITY = "hostile"
HONEST, EVIL = "gw-honest", "gw-evil"
CAMERA = "cam-evil"


def topic(gateway: str, kind: str) -> str:
    return f"yiwang/v1/{COMMUNITY}/{gateway}/{kind}"


def write_config(target: Path) -> None:
    shutil.copytree(ROOT / "config" / "sensor-types", target / "sensor-types")
    (target / "communities").mkdir(parents=True)
    community = {
        "id": COMMUNITY,
        "name": "hostile",
        "grids": [{"id": "g-00", "name": "grid 0"}],
        "gateways": [
            {"id": HONEST, "devices": [{"id": "wl-honest", "type": "water.level@1", "grid": "g-00"}]},
            {
                "id": EVIL,
                "devices": [
                    {"id": CAMERA, "type": "camera.events@1", "grid": "g-00"},
                    {"id": "wl-evil", "type": "water.level@1", "grid": "g-00"},
                ],
            },
        ],
    }
    (target / "communities" / f"{COMMUNITY}.yaml").write_text(yaml.safe_dump(community), encoding="utf-8")


class Ingest:
    def __init__(self, tmp: Path, broker: MosquittoServer, influx: InfluxServer) -> None:
        write_config(tmp / "config")
        self.tmp, self.broker = tmp, broker
        self.client_id = unique_name("ingest")
        self.metrics_port = free_port()
        self.database = tmp / "yiwang.db"
        self.env = {
            "YIWANG_MQTT_PORT": str(broker.port),
            "YIWANG_SERIES_URL": influx.store_url,
            "YIWANG_DATABASE_URL": f"sqlite:///{self.database}",
            "YIWANG_CONFIG_DIR": str(tmp / "config"),
            "YIWANG_INGEST_CLIENT_ID": self.client_id,
            "YIWANG_INGEST_SPOOL_DIR": str(tmp / "spool"),
            "YIWANG_INGEST_METRICS_PORT": str(self.metrics_port),
            "YIWANG_INGEST_GATEWAY_BYTES_PER_S": str(BUDGET_BYTES_PER_S),
            "YIWANG_INGEST_GATEWAY_BURST_BYTES": str(2 * BUDGET_BYTES_PER_S),
            "YIWANG_INGEST_DEAD_LETTER_MAX_BYTES": str(DEAD_LETTER_BUDGET),
            "YIWANG_INGEST_DEAD_LETTERS_PER_S": str(DEAD_LETTERS_PER_S),
            "YIWANG_LOG_LEVEL": "WARNING",
        }
        self.service = Service(["ingest"], self.env, ROOT, tmp / "ingest.log")

    def start(self) -> None:
        self.service.start()
        wait_for(self.metrics_up, 60, f"ingest's /metrics; log:\n{self.log()}")

    def metrics_up(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels`` (0 when absent)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        total = 0.0
        for match in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.MULTILINE):
            have = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(match[2])
        return total

    def rss(self) -> int:
        assert self.service.proc is not None
        status = Path(f"/proc/{self.service.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match, status
        return int(match[1]) * 1024

    def dead_letters(self) -> tuple[int, int, list[str]]:
        """Rows, bytes (payload + reason + topic) and reasons in the dead-letter store, read directly."""
        with sqlite3.connect(self.database) as conn:
            rows, size = conn.execute(
                "SELECT count(*), coalesce(sum(length(payload) + length(CAST(reason AS BLOB))"
                " + length(CAST(topic AS BLOB))), 0) FROM ingest_dead_letters"
            ).fetchone()
            reasons = [r for (r,) in conn.execute("SELECT reason FROM ingest_dead_letters")]
        return int(rows), int(size), reasons

    def log(self) -> str:
        return self.service.log()[-4000:]

    def close(self) -> None:
        if self.service.proc is not None and self.service.proc.poll() is None:
            self.service.stop()


def telemetry(seq: int, device: str, ts: int) -> bytes:
    doc = {"seq": seq, "readings": [{"device": device, "ts": ts, "values": {"level_cm": 12.5}}]}
    return json.dumps(doc).encode()


def event(seq: int, kind: str, ts: int) -> bytes:
    doc = {
        "seq": seq,
        "events": [{"device": CAMERA, "ts": ts, "id": str(uuid.uuid4()), "kind": kind, "phase": "instant"}],
    }
    return json.dumps(doc).encode()


def hostile_second(rng: random.Random, seq: int, ts: int) -> list[tuple[str, bytes, int]]:
    """One second of the hostile gateway's traffic, ``BUDGET_BYTES_PER_S`` bytes in all."""
    out: list[tuple[str, bytes, int]] = []
    letters = string.ascii_lowercase
    telemetry_topic, event_topic = topic(EVIL, "telemetry"), topic(EVIL, "event")

    def fill(share: str, make: Callable[[], tuple[str, bytes, int]]) -> None:
        nonlocal seq
        sent = 0
        while sent < SHARES[share] * BUDGET_BYTES_PER_S:
            seq += 1
            message = make()
            out.append(message)
            sent += len(message[1])

    fill(
        "huge_ids",
        lambda: (
            telemetry_topic,
            telemetry(seq, "".join(rng.choices(letters, k=HUGE_ID_BYTES)), ts + seq),
            1,
        ),
    )
    fill(
        "unknown_ids",
        lambda: (telemetry_topic, telemetry(seq, "".join(rng.choices(letters + "-", k=64)), ts + seq), 1),
    )
    fill(
        "random_kinds",
        lambda: (event_topic, event(seq, "camera." + "".join(rng.choices(letters, k=12)), ts + seq), 1),
    )
    poisons = [
        lambda: (telemetry_topic, rng.randbytes(2000), 0),
        lambda: (telemetry_topic, b'{"seq": 1, "readings": [' + b" " * OVERSIZE + b"]}", 0),
        lambda: (event_topic, b'{"seq": ' + rng.randbytes(500) + b"}", 0),
    ]
    fill("poison", lambda: rng.choice(poisons)())
    rng.shuffle(out)
    return out


class Honest:
    """An honest gateway: ``HONEST_PER_S`` single-reading messages a second at QoS 1."""

    def __init__(self, port: int) -> None:
        self.sent: list[tuple[float, int]] = []  # (monotonic time, readings sent so far)
        self.stop = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("honest"))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            info = self.client.publish(topic(HONEST, "telemetry"), telemetry(n, "wl-honest", T0 + n), qos=1)
            info.wait_for_publish(10)
            self.sent.append((time.monotonic(), n))
            self.stop.wait(1 / HONEST_PER_S)

    def sent_before(self, moment: float) -> int:
        return max((n for t, n in self.sent if t <= moment), default=0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        self.client.disconnect()
        self.client.loop_stop()


def values(influx: InfluxServer, statement: str) -> list[list[Any]]:
    """The rows of the statement's first series ([] when it has none)."""
    result: Any = influx_query(influx.url, statement, influx.database)[0].get("series")
    return list(result[0]["values"]) if result else []


def stored(influx: InfluxServer, gateway: str) -> int:
    rows = values(influx, f"SELECT count(level_cm) FROM \"water.level\" WHERE gateway = '{gateway}'")  # noqa: S608
    return int(rows[0][1]) if rows else 0


def series_count(influx: InfluxServer) -> int:
    return len(values(influx, "SHOW SERIES"))


def event_kinds(influx: InfluxServer) -> set[str]:
    return {value for _, value in values(influx, 'SHOW TAG VALUES FROM "events" WITH KEY = "kind"')}


def publish(port: int, messages: list[tuple[str, bytes, int]]) -> None:
    publisher = RawPublisher(port, unique_name("evil"))
    try:
        publisher.run(messages, timeout=120)
    finally:
        publisher.close()


def test_a_hostile_gateway_cannot_grow_memory_storage_or_series(
    tmp_path: Path, broker: MosquittoServer, influx: InfluxServer
) -> None:
    ingest = Ingest(tmp_path, broker, influx)
    subscribe_session(broker.port, ingest.client_id)
    ingest.start()
    honest = Honest(broker.port)
    rng = random.Random(4)
    seq, hostile_sent = 0, 0
    rss_samples: list[int] = []
    progress: list[tuple[float, int]] = []  # (monotonic time, honest readings stored)
    try:
        wait_for(lambda: stored(influx, HONEST) > 0, 60, f"honest readings stored; log:\n{ingest.log()}")
        # Warm up on the same traffic (every code path loaded, every pool at its working size) ...
        attack_started = None
        started = time.monotonic()
        second = 0
        while time.monotonic() - started < WARMUP_SECONDS + HOSTILE_SECONDS:
            tick = started + second
            messages = hostile_second(rng, seq, T0 + 10_000_000 * second)
            seq += len(messages) + 1
            publish(broker.port, messages)
            hostile_sent += len(messages)
            second += 1
            rss_samples.append(ingest.rss())
            progress.append((time.monotonic(), stored(influx, HONEST)))
            if attack_started is None and time.monotonic() - started >= WARMUP_SECONDS:
                # ... then measure from there: growth, not the interpreter's own size, is the attack's.
                attack_started = len(rss_samples)
            time.sleep(max(0.0, tick + 1 - time.monotonic()))
        ended = time.monotonic()
        honest_sent = honest.sent_before(ended)
        # Everything sent is handled: stored, dead-lettered or counted as discarded.
        wait_for(
            lambda: ingest.metric("yiwang_ingest_messages_total") >= hostile_sent + honest_sent,
            120,
            f"all {hostile_sent + honest_sent} messages handled; log:\n{ingest.log()}",
        )
        rss_samples.append(ingest.rss())
        assert attack_started is not None
        baseline = rss_samples[attack_started - 1]
        growth = max(rss_samples[attack_started:]) - baseline
        rows, size, reasons = ingest.dead_letters()
        kinds = event_kinds(influx)
        discarded = ingest.metric("yiwang_ingest_dead_letters_discarded_total")
        print(
            f"hostile messages {hostile_sent}, RSS {baseline / 1e6:.1f} MB + {growth / 1e6:.1f} MB; "
            f"dead letters {rows} rows, {size} bytes; discarded {discarded}; event kinds {len(kinds)}; "
            f"series {series_count(influx)}"
        )

        # Memory: huge and unknown ids are not kept.
        assert growth <= RSS_GROWTH_BOUND, (baseline, rss_samples)
        # Storage: the dead-letter store stays within its budget; what it did not keep is counted.
        assert size <= DEAD_LETTER_BUDGET, (rows, size)
        assert ingest.metric("yiwang_ingest_dead_letters_discarded_total", cause="rate_limited") > 0
        assert ingest.metric("yiwang_ingest_dead_letters_discarded_total", cause="retention") > 0
        assert ingest.metric("yiwang_ingest_dead_letters_truncated_total") > 0
        assert ingest.metric("yiwang_ingest_dead_letters_total") >= hostile_sent
        # Cardinality: random kinds create no series; they are dead-lettered with their reason.
        assert kinds <= {"camera.motion", "camera.tamper", "camera.stream_lost", "camera.haze"}, kinds
        assert series_count(influx) <= 2, series_count(influx)  # the two water-level devices at most
        assert ingest.metric("yiwang_ingest_dead_letters_total", reason="unknown_event_kind") > 0
        assert any("unknown event kind" in r for r in reasons)
        # The honest gateway kept arriving all along: at every sample, what it had sent
        # HONEST_MAX_LAG_S earlier was stored.
        for moment, count in progress:
            if moment - HONEST_MAX_LAG_S > started:
                assert count >= honest.sent_before(moment - HONEST_MAX_LAG_S), (moment - started, progress)
        wait_for(lambda: stored(influx, HONEST) >= honest_sent, 60, "every honest reading stored")
    finally:
        honest.close()
        ingest.close()


def test_retained_telemetry_and_events_are_dead_lettered_not_stored(
    tmp_path: Path, broker: MosquittoServer, influx: InfluxServer
) -> None:
    ingest = Ingest(tmp_path, broker, influx)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("evil"))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        # Valid content from registered devices: only the retain flag is wrong.
        for path, payload in (
            (topic(EVIL, "telemetry"), telemetry(1, "wl-evil", T0)),
            (topic(EVIL, "event"), event(2, "camera.motion", T0)),
        ):
            client.publish(path, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    # The broker replays them to ingest's subscription, flagged retained, as to every new subscriber.
    ingest.start()
    try:
        wait_for(
            lambda: ingest.metric("yiwang_ingest_dead_letters_total") >= 2,
            60,
            f"both retained messages dead-lettered; log:\n{ingest.log()}",
        )
        _, _, reasons = ingest.dead_letters()
        assert len(reasons) == 2 and all(r.startswith("retained message") for r in reasons), reasons
        assert ingest.metric("yiwang_ingest_dead_letters_total", reason="retained") == 2
        assert stored(influx, EVIL) == 0
        assert event_kinds(influx) == set()
    finally:
        ingest.close()
