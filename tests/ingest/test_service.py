"""The ingest service against a real Mosquitto and influxd: acknowledged only after the database write."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.service import IngestSettings, run
from series.factory import open_store
from tests.platform import CONFIG_DIR, wait_for
from yiwang.servers import InfluxServer, MosquittoServer, start_influxd, unique_name

pytestmark = pytest.mark.integration
TS = 1764183600000
COUNT = 200


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[InfluxServer]:
    """A private influxd, since this test takes it down."""
    server = start_influxd(base_dir=tmp_path)
    yield server
    server.stop()


def publish_readings(port: int, count: int) -> None:
    """QoS 1 publisher that waits for every PUBACK (mosquitto_pub -l is no load generator)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("pub"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = []
        for seq in range(1, count + 1):
            doc = {
                "seq": seq,
                "readings": [{"device": "wl-01", "ts": TS + seq, "values": {"level_cm": seq % 40}}],
            }
            infos.append(client.publish("yiwang/v1/zhuganxiang/gw-01/telemetry", json.dumps(doc), qos=1))
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def provision_session(port: int, client_id: str) -> None:
    """Create ingest's persistent session and subscription, as a deployment does before gateways publish."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    subscribed: set[int] = set()
    client.on_subscribe = lambda _c, _u, mid, _codes, _p: subscribed.add(mid)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        _, mid = client.subscribe("yiwang/v1/+/+/telemetry", qos=1)
        wait_for(lambda: mid in subscribed, 10, "the SUBACK")
    finally:
        client.disconnect()
        client.loop_stop()


class IngestThread:
    def __init__(self, settings: IngestSettings) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run, args=(settings, self.stop), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_nothing_is_lost_while_influxdb_is_down(
    mosquitto: MosquittoServer, own_influxd: InfluxServer, tmp_path: Path
) -> None:
    settings = IngestSettings(
        mqtt_port=mosquitto.port,
        series_url=own_influxd.store_url,
        database_url=f"sqlite:///{tmp_path}/yiwang.db",
        config_dir=CONFIG_DIR,
        ingest_client_id=unique_name("ingest"),
    )
    provision_session(mosquitto.port, settings.ingest_client_id)
    own_influxd.halt()
    ingest = IngestThread(settings)
    publish_readings(mosquitto.port, COUNT)
    # Ingest receives the messages and retries against the dead database, acknowledging none of them.
    time.sleep(2)
    assert ingest.thread.is_alive()
    ingest.close()

    own_influxd.start()
    ingest = IngestThread(settings)  # same client id: the broker redelivers everything not acknowledged
    store = open_store(settings.series_url)
    try:
        rows = wait_for(
            lambda: (
                len(
                    r := store.query(
                        measurement="water.level",
                        community="zhuganxiang",
                        device="wl-01",
                        since_ms=TS,
                        limit=10_000,
                    )
                )
                == COUNT
                and r
            ),
            30,
            f"all {COUNT} readings in InfluxDB",
        )
        assert [r.ts_ms for r in rows] == [TS + seq for seq in range(1, COUNT + 1)]
    finally:
        store.close()
        ingest.close()
