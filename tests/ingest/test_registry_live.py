"""Ingest follows the registry while it runs: a device added is stored within 5 s, a retired one is
dead-lettered as retired — the real ingest process, a real Mosquitto, no restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from common.db import make_engine
from common.heartbeat import read_heartbeats
from ingest.deadletters import DeadLetterStore
from registry import editing
from registry.live import LOOK_AGAIN_S
from series.sqlite import SQLiteStore
from series.store import Row
from tests.ingest.seeded import TYPES, ingest_on_seeded_registry
from tests.platform import Service, wait_for
from yiwang.servers import MosquittoServer, unique_name

TOPIC = "yiwang/v1/zhuganxiang/gw-02/telemetry"


@pytest.fixture
def running(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[tuple[Service, str, Path]]:
    with ingest_on_seeded_registry(tmp_path, mosquitto, YIWANG_REGISTRY_POLL_S="1") as (service, db_url):
        yield service, db_url, tmp_path / "series.db"


class Gateway:
    def __init__(self, port: int) -> None:
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("gw"))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, device: str, level: float) -> int:
        self.seq += 1
        ts = int(time.time() * 1000)
        reading = {"device": device, "ts": ts, "values": {"level_cm": level}}
        self.client.publish(
            TOPIC, json.dumps({"seq": self.seq, "readings": [reading]}), qos=1
        ).wait_for_publish(5)
        return ts

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until_storing(service: Service, gateway: Gateway, store: SQLiteStore) -> None:
    """Ingest is up once it stores a known device's reading."""
    wait_for(
        lambda: (
            gateway.send("wl-03", 10)
            and store.query(measurement="water.level", community="zhuganxiang", device="wl-03", since_ms=0)
        ),
        30,
        f"ingest did not start; log:\n{service.log()[-2000:]}",
        0.3,
    )


def register(db: Engine, device: str) -> None:
    with Session(db) as session, session.begin():
        editing.add_device(
            session, "zhuganxiang", "gw-02", {"id": device, "type": "water.level@1", "grid": "g-south"}, TYPES
        )


@pytest.mark.integration
def test_a_device_added_is_stored_within_5_s_and_a_retired_one_dead_lettered(
    running: tuple[Service, str, Path], mosquitto: MosquittoServer
) -> None:
    service, db_url, series_path = running
    db = make_engine(db_url)
    store = SQLiteStore(series_path)
    letters = DeadLetterStore(db)
    gateway = Gateway(mosquitto.port)
    try:
        wait_until_storing(service, gateway, store)
        gateway.send("wl-77", 11)
        wait_for(
            lambda: any("unknown device 'wl-77'" in d.reason for d in letters.latest(20)),
            10,
            "a reading of an unregistered device is dead-lettered",
            0.2,
        )
        register(db, "wl-77")
        added = time.monotonic()

        def stored() -> bool:
            gateway.send("wl-77", 12)
            return bool(
                store.query(measurement="water.level", community="zhuganxiang", device="wl-77", since_ms=0)
            )

        wait_for(
            stored,
            5,
            f"the new device's reading was not stored within 5 s; log:\n{service.log()[-2000:]}",
            0.2,
        )
        assert time.monotonic() - added <= 5

        with Session(db) as session, session.begin():
            editing.change_device(session, "zhuganxiang", "wl-77", {"state": "retired"}, TYPES)

        def refused() -> bool:
            gateway.send("wl-77", 13)
            return any("retired device 'wl-77'" in d.reason for d in letters.latest(20))

        wait_for(refused, 5, "a retired device's reading was not dead-lettered as retired within 5 s", 0.2)

        def beat() -> dict | None:
            beats = [b.detail for b in read_heartbeats(db) if b.service == "ingest"]
            return beats[0] if beats and beats[0].get("registry", {}).get("version") == 3 else None

        registry = wait_for(beat, 20, "ingest's heartbeat names the registry version it runs on", 0.5)[
            "registry"
        ]
        assert registry["source"] == "registry" and registry["error"] is None
    finally:
        gateway.close()
        db.dispose()


@pytest.mark.integration
def test_a_device_registered_a_moment_ago_is_stored_from_its_first_reading(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    # Polling once a minute: only the check an unknown device's reading makes can find the new device.
    with ingest_on_seeded_registry(tmp_path, mosquitto, YIWANG_REGISTRY_POLL_S="60") as (service, db_url):
        db = make_engine(db_url)
        store = SQLiteStore(tmp_path / "series.db")
        letters = DeadLetterStore(db)
        gateway = Gateway(mosquitto.port)
        try:
            wait_until_storing(service, gateway, store)
            register(db, "wl-78")
            time.sleep(LOOK_AGAIN_S)  # past any check another reading made a moment ago
            sent = gateway.send("wl-78", 12)

            def stored() -> list[Row]:
                return store.query(
                    measurement="water.level", community="zhuganxiang", device="wl-78", since_ms=0
                )

            [point] = wait_for(
                stored, 5, f"the first reading was not stored; log:\n{service.log()[-2000:]}", 0.1
            )
            assert point.ts_ms == sent
            assert not [d for d in letters.latest(50) if "wl-78" in d.reason]
        finally:
            gateway.close()
            db.dispose()
