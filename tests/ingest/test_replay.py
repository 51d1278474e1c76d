"""Replaying dead letters: the real ingest process, a real Mosquitto. A reading of an unregistered device
is dead-lettered; once the device is registered and the letter marked (as the API marks it), ingest
stores the reading through its normal path and removes the letter; a letter still refused stays, with
its reason; both are counted in /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.routes.deadletters import DeadLetterFilter, mark_for_replay
from common.db import make_engine
from ingest.deadletters import REFUSED, DeadLetterStore, dead_letters
from registry import editing
from series.sqlite import SQLiteStore
from tests.ingest.seeded import TYPES, ingest_on_seeded_registry
from tests.platform import Service, wait_for
from yiwang.servers import MosquittoServer, free_port, unique_name

TOPIC = "yiwang/v1/zhuganxiang/gw-02/telemetry"


@pytest.fixture
def running(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[tuple[Service, str, Path, int]]:
    metrics_port = free_port()
    with ingest_on_seeded_registry(
        tmp_path,
        mosquitto,
        YIWANG_INGEST_METRICS_PORT=str(metrics_port),
        # Slow polling: the replay must not depend on the registry poll having seen the new device.
        YIWANG_REGISTRY_POLL_S="60",
    ) as (service, db_url):
        yield service, db_url, tmp_path / "series.db", metrics_port


def _publish(client: mqtt.Client, seq: int, device: str, ts: int) -> bool:
    reading = {"device": device, "ts": ts, "values": {"level_cm": 10.0}}
    client.publish(TOPIC, json.dumps({"seq": seq, "readings": [reading]}), qos=1).wait_for_publish(5)
    return False


def _replayed(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        outcome: float(line.split()[-1])
        for outcome in ("stored", "refused")
        for line in text.splitlines()
        if line.startswith(f'yiwang_ingest_replayed_total{{outcome="{outcome}"}}')
    }


@pytest.mark.integration
def test_a_letter_replayed_after_its_device_is_registered_is_stored_and_removed(
    running: tuple[Service, str, Path, int], mosquitto: MosquittoServer
) -> None:
    service, db_url, series_path, metrics_port = running
    db = make_engine(db_url)
    store = SQLiteStore(series_path)
    letters = DeadLetterStore(db)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("gw"))
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    seq = iter(range(1, 10_000))
    try:
        wait_for(
            lambda: (
                _publish(client, next(seq), "wl-03", int(time.time() * 1000))
                or store.query(measurement="water.level", community="zhuganxiang", device="wl-03", since_ms=0)
            ),
            30,
            f"ingest did not start; log:\n{service.log()[-2000:]}",
            0.3,
        )
        lost_ts = int(time.time() * 1000) - 60_000
        _publish(client, next(seq), "wl-77", lost_ts)  # registered below
        _publish(client, next(seq), "wl-88", lost_ts)  # never registered
        wait_for(
            lambda: sum("unknown device" in d.reason for d in letters.latest(20)) == 2,
            10,
            "both readings of unregistered devices are dead-lettered",
            0.2,
        )
        with Session(db) as session, session.begin():
            editing.add_device(
                session,
                "zhuganxiang",
                "gw-02",
                {"id": "wl-77", "type": "water.level@1", "grid": "g-south"},
                TYPES,
            )
        marked = mark_for_replay(db, ids=None, where=DeadLetterFilter("gw-02", "unknown_device"), limit=1000)
        assert marked == 2

        def settled() -> list[tuple[str, str | None, object]]:
            with db.connect() as conn:
                rows = conn.execute(
                    select(
                        dead_letters.c.reason,
                        dead_letters.c.replay_outcome,
                        dead_letters.c.replay_requested_at,
                    )
                ).all()
            return [tuple(r) for r in rows] if len(rows) == 1 and rows[0][1] == REFUSED else []

        ((reason, outcome, requested),) = wait_for(
            settled, 15, f"the replay did not settle; log:\n{service.log()[-2000:]}", 0.2
        )
        assert "unknown device 'wl-88'" in reason and outcome == REFUSED and requested is None
        points = store.query(measurement="water.level", community="zhuganxiang", device="wl-77", since_ms=0)
        assert [p.ts_ms for p in points] == [lost_ts]  # the letter's own reading, stored
        assert _replayed(metrics_port) == {"stored": 1.0, "refused": 1.0}
    finally:
        client.loop_stop()
        client.disconnect()
        db.dispose()
