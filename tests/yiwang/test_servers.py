"""Smoke tests of the throw-away servers behind the fixtures: each starts and answers."""

from __future__ import annotations

import queue
import uuid
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from yiwang.servers import (
    InfluxDatabase,
    InfluxServer,
    MosquittoServer,
    PostgresServer,
    ServerStartError,
    free_port,
    start_mosquitto,
)

pytestmark = pytest.mark.integration


def mqtt_round_trip(server: MosquittoServer, topic: str, payload: bytes) -> bytes:
    """Subscribe, publish at QoS 1, return what the subscriber received (bounded waits throughout)."""
    received: queue.Queue[bytes] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    sub.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
    sub.on_subscribe = lambda *_: subscribed.put(True)
    sub.on_message = lambda _client, _userdata, message: received.put(bytes(message.payload))
    sub.connect(server.host, server.port)
    sub.loop_start()
    try:
        assert subscribed.get(timeout=5)
        pub.connect(server.host, server.port)
        pub.loop_start()
        try:
            pub.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
            return received.get(timeout=5)
        finally:
            pub.disconnect()
            pub.loop_stop()
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_mosquitto_publish_subscribe(mosquitto: MosquittoServer) -> None:
    assert mqtt_round_trip(mosquitto, "yiwang/test/smoke", "你好".encode()) == "你好".encode()


def test_mosquitto_restart_keeps_port() -> None:
    server = start_mosquitto()
    try:
        server.restart(kill=True)
        assert server.running
        assert mqtt_round_trip(server, "yiwang/test/restart", b"again") == b"again"
    finally:
        server.stop()
    assert not server.workdir.exists()


def test_mosquitto_bad_config_fails_with_log_tail(tmp_path: Path) -> None:
    # base_dir: a failed start keeps its directory for the log; let pytest's tmp_path clean it up.
    with pytest.raises(ServerStartError, match="Unknown configuration variable"):
        start_mosquitto(extra_config="no_such_option 1", base_dir=tmp_path, timeout=5)


def test_influxdb_pings_and_has_database(influxdb: InfluxServer, influx_database: InfluxDatabase) -> None:
    with httpx.Client(base_url=influxdb.url, timeout=5) as client:
        assert client.get("/ping").status_code == 204
        answer = client.get("/query", params={"q": "SHOW DATABASES"}).json()
    names = {row[0] for row in answer["results"][0]["series"][0]["values"]}
    assert {influxdb.database, influx_database.database} <= names


def test_postgres_select_one(postgres: PostgresServer, postgres_url: str) -> None:
    for url in (postgres.url, postgres_url):
        db = sa.create_engine(url)
        try:
            with db.connect() as conn:
                assert conn.execute(sa.text("select 1")).scalar_one() == 1
        finally:
            db.dispose()


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
