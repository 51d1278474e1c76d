"""A sensor type added while the platform runs reaches the gateway inside its desired config
(``sensor_types``, rendered by ``registry.desired``): the gateway polls a device of a type it has no
file for, and a bad shipped profile refuses the whole config with the type and field named (#28)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import Topic, TopicKind
from edge.agent import EdgeAgent, mqtt_options
from edge.gateway_config import GatewayConfig
from edge.publisher import GatewayPublisher
from edge.sources.build import load_profiles
from edge.sources.registry import load_sources
from edge.spool import Spool
from tests.edge.sources.emulators import ModbusEmulator, Slave, pty_pair
from tests.edge.test_agent import _events, _telemetry, bus, wait_for
from tests.edge.test_publisher import Subscriber
from yiwang.servers import MosquittoServer

CONFIG = Path(__file__).resolve().parents[2] / "config"
CO2 = {
    "id": "air.co2@1",
    "name": "CO2 sensor",
    "expected_interval_s": 10,
    "fields": {
        "co2_ppm": {"type": "float", "unit": "ppm", "min": 0, "max": 10000},
        "temperature": {"type": "float", "unit": "°C", "min": -40, "max": 85},
    },
    "protocol": {
        "kind": "modbus",
        "fields": {
            "co2_ppm": {"function": "input", "address": 0, "data_type": "uint16"},
            "temperature": {"function": "input", "address": 1, "data_type": "int16", "scale": 0.1},
        },
    },
}
DEVICE = {"id": "co2-0101", "type": "air.co2@1", "unit": 7, "poll_s": 0.2, "max_interval_s": 0.2}


@pytest.fixture
def co2_slave() -> Iterator[str]:
    with pty_pair() as pair, ModbusEmulator([Slave(7, {0: 612, 1: 215})], port=pair.device):
        yield pair.gateway


@pytest.mark.integration
def test_a_type_shipped_in_the_config_is_polled_and_a_bad_one_refused(
    mosquitto: MosquittoServer, co2_slave: str, tmp_path: Path
) -> None:
    assert "air.co2@1" not in load_profiles(CONFIG)  # the gateway has no file for it
    config = GatewayConfig.model_validate(
        {
            "community": "ship",
            "gateway": "gw-s",
            "config_dir": str(CONFIG),
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "spool": {"dir": str(tmp_path)},
            "buses": [],
        }
    )
    sub = Subscriber(mosquitto.host, mosquitto.port, "yiwang/v1/ship/gw-s/+")
    stop = threading.Event()
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = GatewayPublisher("ship", "gw-s", spool, [], mqtt_options(config))
        agent = EdgeAgent(config, load_profiles(CONFIG), load_sources(), publisher)
        thread = threading.Thread(target=lambda: asyncio.run(agent.run(stop)))
        thread.start()
        control = mqtt.Client(CallbackAPIVersion.VERSION2)
        control.connect(mosquitto.host, mosquitto.port)
        control.loop_start()
        topic = Topic("ship", "gw-s", TopicKind.CONFIG).path

        def send(config_hash: str, body: dict[str, object]) -> None:
            payload = json.dumps({"hash": config_hash, "config": body})
            control.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

        def events(kind: str) -> list[dict[str, object]]:
            return [
                dict(e.attrs)
                for p, _ in sub.of_kind(TopicKind.EVENT)
                for e in _events(p).events
                if e.kind == kind
            ]

        try:
            broken = {**CO2, "fields": {"co2_ppm": {"type": "float", "unit": "ppm", "min": 10, "max": 0}}}
            send("a" * 16, {"buses": [bus(co2_slave, [DEVICE])], "sensor_types": {"air.co2@1": broken}})
            wait_for(lambda: bool(events("config.rejected")))
            reason = str(events("config.rejected")[0]["reason"])
            assert reason.startswith("sensor_types.air.co2@1: ") and "co2_ppm" in reason

            send("b" * 16, {"buses": [bus(co2_slave, [DEVICE])], "sensor_types": {"air.co2@1": CO2}})
            wait_for(lambda: any(a["hash"] == "b" * 16 for a in events("config.applied")))

            def co2_values() -> list[dict[str, object]]:
                return [
                    dict(r.values)
                    for p, _ in sub.of_kind(TopicKind.TELEMETRY)
                    for r in _telemetry(p).readings
                    if r.device == "co2-0101"
                ]

            wait_for(lambda: bool(co2_values()))
            assert co2_values()[0] == {"co2_ppm": 612.0, "temperature": pytest.approx(21.5)}
        finally:
            stop.set()
            thread.join(15)
            control.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
            control.disconnect()
            control.loop_stop()
            publisher.stop()
            sub.close()
    assert not thread.is_alive()
