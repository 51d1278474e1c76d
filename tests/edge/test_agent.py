"""The edge agent end to end: Modbus slaves on a pty, a real Mosquitto, remote config at run time."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.catalog import load_catalog
from contract.messages import DevicesMessage, EventMessage, StateMessage, TelemetryMessage, decode_message
from contract.profiles import SensorTypeProfile
from contract.topics import Topic, TopicKind
from edge.agent import EdgeAgent, load_gateway_config, mqtt_options, remote_device_set
from edge.gateway_config import BusConfig, DeviceConfig, GatewayConfig
from edge.handoff import Handoff
from edge.publisher import GatewayPublisher
from edge.sources.base import BoundDevice, SourceBatch
from edge.sources.build import load_profiles
from edge.sources.modbus import ModbusBus
from edge.sources.plan import Block
from edge.sources.registry import load_sources
from edge.spool import Spool
from tests.edge.sources.emulators import ModbusEmulator, ModemEmulator, Slave, pty_pair
from tests.edge.test_publisher import Subscriber
from yiwang.bench.edge import ENV4
from yiwang.servers import MosquittoServer, free_port

CONFIG = Path(__file__).resolve().parents[2] / "config"


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_the_shipped_gateway_example_is_valid() -> None:
    config = load_gateway_config(CONFIG / "gateways" / "zhuganxiang-gw-03.yaml")
    agent_devices = [d.id for b in config.buses for d in b.devices]
    assert "em-0701" in agent_devices and config.modem is not None
    # Device ids are unique in a community: the example must not reuse a registered device's id.
    registered = {d.device.id for d in load_catalog(CONFIG).devices()}
    assert registered.isdisjoint(agent_devices)


def test_a_typo_in_the_gateway_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        "community: c\ngateway: g\nbuses:\n- {id: b, kind: modbus_rtu, port: /dev/x, devices: [{id: d, type: env.th@1, unit: 1, pol_s: 2}]}\n"
    )
    with pytest.raises(ValueError, match=r"gw.yaml: buses.0.devices.0.pol_s: Extra inputs are not permitted"):
        load_gateway_config(path)


def bus(port: str, devices: list[dict[str, object]]) -> dict[str, object]:
    return {
        "id": "rs485-1",
        "kind": "modbus_rtu",
        "port": port,
        "timeout_s": 0.2,
        "retries": 0,
        "devices": devices,
    }


@pytest.fixture
def community() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pty() -> Iterator[str]:
    slaves = [Slave(1, {1: 215, 2: 550}), Slave(2, {4: 1234}), Slave(3, silent=True)]
    with pty_pair() as pair, ModbusEmulator(slaves, port=pair.device):
        yield pair.gateway


@pytest.mark.integration
def test_agent_publishes_and_takes_remote_config(
    mosquitto: MosquittoServer, community: str, pty: str, tmp_path: Path
) -> None:
    th = {"id": "th-1", "type": "env.th@1", "unit": 1, "poll_s": 0.2, "max_interval_s": 0.2}
    dead = {"id": "th-3", "type": "env.th@1", "unit": 3, "poll_s": 0.2}
    config = GatewayConfig.model_validate(
        {
            "community": community,
            "gateway": "gw-t",
            "config_dir": str(CONFIG),
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "spool": {"dir": str(tmp_path)},
            "buses": [bus(pty, [th, dead])],
        }
    )
    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/gw-t/+")
    stop = threading.Event()
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = GatewayPublisher(community, "gw-t", spool, [], mqtt_options(config))
        agent = EdgeAgent(config, load_profiles(CONFIG), load_sources(), publisher)
        thread = threading.Thread(target=lambda: asyncio.run(agent.run(stop)))
        thread.start()
        control = mqtt.Client(CallbackAPIVersion.VERSION2)
        control.connect(mosquitto.host, mosquitto.port)
        control.loop_start()
        config_topic = Topic(community, "gw-t", TopicKind.CONFIG).path

        def send_config(config_hash: str, body: dict[str, object]) -> None:
            payload = json.dumps({"hash": config_hash, "config": body})
            control.publish(config_topic, payload, qos=1, retain=True).wait_for_publish(5)

        def devices_seen() -> set[str]:
            return {r.device for p, _ in sub.of_kind(TopicKind.TELEMETRY) for r in _telemetry(p).readings}

        def events() -> list[tuple[str, str, dict[str, object]]]:
            return [
                (e.device, e.kind, dict(e.attrs))
                for p, _ in sub.of_kind(TopicKind.EVENT)
                for e in _events(p).events
            ]

        try:
            wait_for(lambda: "th-1" in devices_seen())
            wait_for(lambda: ("th-3", "device.unavailable") in [(d, k) for d, k, _ in events()])
            listed = [_devices(p) for p, retained in sub.of_kind(TopicKind.DEVICES)]
            assert {d.device for d in listed[-1].devices} == {"th-1", "th-3"}

            # An invalid device set is rejected with its reason, and the running one keeps running.
            send_config("a" * 16, {"buses": [bus(pty, [{**th, "type": "env.nope@1"}])]})
            wait_for(lambda: any(k == "config.rejected" for _, k, _ in events()))
            rejected = next(a for _, k, a in events() if k == "config.rejected")
            assert rejected["hash"] == "a" * 16
            assert "unknown sensor type 'env.nope@1'" in str(rejected["reason"])
            before = len(sub.of_kind(TopicKind.TELEMETRY))
            wait_for(lambda: len(sub.of_kind(TopicKind.TELEMETRY)) > before + 2)

            send_config(
                "b" * 16,
                {
                    "buses": [
                        bus(pty, [{"id": "wl-2", "type": "water.level@1", "unit": 2, "poll_s": 0.2}]),
                        {"id": "x", "kind": "modbus_rtu", "port": pty},
                    ]
                },
            )
            wait_for(lambda: sum(k == "config.rejected" for _, k, _ in events()) == 2)

            # A valid one is applied: the new device reports, the device list follows.
            wl = {"id": "wl-2", "type": "water.level@1", "unit": 2, "poll_s": 0.2}
            send_config("c" * 16, {"buses": [bus(pty, [th, wl])]})
            wait_for(lambda: "wl-2" in devices_seen())
            assert [a["hash"] for _, k, a in events() if k == "config.applied"] == ["c" * 16]
            wait_for(
                lambda: (
                    {d.device for d in _devices(sub.of_kind(TopicKind.DEVICES)[-1][0]).devices}
                    == {"th-1", "wl-2"}
                )
            )
            level = [
                r.values
                for p, _ in sub.of_kind(TopicKind.TELEMETRY)
                for r in _telemetry(p).readings
                if r.device == "wl-2"
            ]
            assert level[0] == {"level_cm": pytest.approx(123.4)}

            # The same hash again (a reconnect redelivers the retained message) changes nothing.
            assert (
                asyncio.run(agent.handle_config(json.dumps({"hash": "c" * 16, "config": {}}).encode()))
                is False
            )
        finally:
            stop.set()
            thread.join(15)
            control.publish(config_topic, b"", qos=1, retain=True).wait_for_publish(5)
            control.disconnect()
            control.loop_stop()
            publisher.stop()
            sub.close()
    assert not thread.is_alive()


@pytest.mark.integration
def test_the_bus_hands_batches_over_and_a_stop_spools_every_one(
    community: str, pty: str, tmp_path: Path
) -> None:
    """A slow spool pushes the bus back (counted), and a stop still spools every batch it read."""
    th = {"id": "th-1", "type": "env.th@1", "unit": 1, "poll_s": 0.02, "max_interval_s": 0.02}
    wl = {"id": "wl-2", "type": "water.level@1", "unit": 2, "poll_s": 0.02, "max_interval_s": 0.02}
    config = GatewayConfig.model_validate(
        {
            "community": community,
            "gateway": "gw-h",
            "config_dir": str(CONFIG),
            # No broker: everything stays in the spool, where it can be counted.
            "mqtt": {"host": "127.0.0.1", "port": free_port()},
            "spool": {"dir": str(tmp_path)},
            "buses": [bus(pty, [th, wl])],
        }
    )
    stop = threading.Event()
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = GatewayPublisher(community, "gw-h", spool, [], mqtt_options(config))
        agent = EdgeAgent(config, load_profiles(CONFIG), load_sources(), publisher)
        agent.handoff = Handoff("publish-test", 2, tick=agent._tick)
        read = {"items": 0}
        bus_thread: list[str] = []
        spooling_threads: set[str] = set()
        source = agent.built.sources[0]
        real_read, real_publish = source.read, agent.publish

        async def counted_read() -> SourceBatch:
            batch = await real_read()
            read["items"] += len(batch.readings) + len(batch.events)
            bus_thread[:] = [threading.current_thread().name]
            return batch

        def slow_publish(batch: SourceBatch) -> None:
            spooling_threads.add(threading.current_thread().name)
            time.sleep(0.05)  # a spool on a slow SD card
            real_publish(batch)

        source.read = counted_read  # type: ignore[method-assign]
        agent.publish = slow_publish  # type: ignore[method-assign]
        thread = threading.Thread(target=lambda: asyncio.run(agent.run(stop)), name="agent-loop")
        thread.start()
        try:
            wait_for(lambda: agent.handoff.waits >= 3)
        finally:
            stop.set()
            thread.join(15)
            publisher.stop()
        assert not thread.is_alive()
        assert bus_thread == ["agent-loop"] and spooling_threads == {"publish-test"}
        assert read["items"] > 0
        assert agent.handoff.depth == 0
        assert spool.depth() == read["items"]  # nothing read from the bus was lost to the stop


def test_a_device_polled_at_its_interval_reports_every_poll_whatever_the_wire_jitter() -> None:
    """A reading per poll at ``poll_s`` = interval, though each request takes a little more or less."""
    clock = [1000.0]
    profile = SensorTypeProfile.model_validate(ENV4)
    config = DeviceConfig(id="env-01", type=profile.id, unit=1, poll_s=1, max_interval_s=1)
    bus = ModbusBus(
        BusConfig(id="b", kind="modbus_rtu", port="/dev/ttyNOPE", devices=[config]),
        [BoundDevice(config, profile)],
        monotonic=lambda: clock[0],
    )
    wire = itertools.cycle([0.040, 0.029, 0.035, 0.028, 0.031])

    async def answer(unit: int, block: Block) -> list[int]:  # the wire, with its jitter
        clock[0] += next(wire)
        return [215, 550, 800, 12][: block.count]

    bus._request = answer  # type: ignore[method-assign]

    async def polls() -> int:
        readings = 0
        for _ in range(20):
            clock[0] = max(clock[0], bus._due[0][0])  # what the scheduler's sleep until due does
            readings += len((await bus.read()).readings)
        return readings

    assert asyncio.run(polls()) == 20


def _telemetry(p: bytes) -> TelemetryMessage:
    m = decode_message(TopicKind.TELEMETRY, p)
    assert isinstance(m, TelemetryMessage)
    return m


def _events(p: bytes) -> EventMessage:
    m = decode_message(TopicKind.EVENT, p)
    assert isinstance(m, EventMessage)
    return m


def _devices(p: bytes) -> DevicesMessage:
    m = decode_message(TopicKind.DEVICES, p)
    assert isinstance(m, DevicesMessage)
    return m


@pytest.mark.integration
def test_modem_health_reaches_state_and_telemetry(
    mosquitto: MosquittoServer, community: str, tmp_path: Path
) -> None:
    with pty_pair() as pair, ModemEmulator(pair.device):
        config = GatewayConfig.model_validate(
            {
                "community": community,
                "gateway": "gw-m",
                "config_dir": str(CONFIG),
                "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
                "state_interval_s": 0.2,
                "modem": {"device": "modem-m", "port": pair.gateway, "poll_s": 0.5, "timeout_s": 1},
            }
        )
        sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/gw-m/+")
        stop = threading.Event()
        with Spool(tmp_path / "gw.sqlite3") as spool:
            publisher = GatewayPublisher(community, "gw-m", spool, [], mqtt_options(config))
            agent = EdgeAgent(config, load_profiles(CONFIG), load_sources(), publisher)
            thread = threading.Thread(target=lambda: asyncio.run(agent.run(stop)))
            thread.start()

            def modem_states() -> list[StateMessage]:
                states = [decode_message(TopicKind.STATE, p) for p, _ in sub.of_kind(TopicKind.STATE)]
                return [s for s in states if isinstance(s, StateMessage) and s.modem is not None]

            try:
                wait_for(lambda: bool(modem_states()))
                modem = modem_states()[-1].modem
                assert modem is not None and modem.rsrp == -95.0 and modem.sinr == 14.0
                wait_for(
                    lambda: any(
                        r.device == "modem-m"
                        for p, _ in sub.of_kind(TopicKind.TELEMETRY)
                        for r in _telemetry(p).readings
                    )
                )
                values = next(
                    r.values for p, _ in sub.of_kind(TopicKind.TELEMETRY) for r in _telemetry(p).readings
                )
                assert values["operator"] == "CHINA MOBILE" and values["registered"] is True
            finally:
                stop.set()
                thread.join(15)
                publisher.stop()
                sub.close()


def test_cli_refuses_a_bad_gateway_file_before_opening_ports(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        "community: c\ngateway: g\nconfig_dir: " + str(CONFIG) + "\nbuses:\n"
        "- {id: b, kind: modbus_rtu, port: /dev/ttyNOPE, devices: [{id: d, type: env.th@9, unit: 1}]}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "yiwang", "edge", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "YIWANG_LOG_LEVEL": "WARNING"},
    )
    assert result.returncode == 2
    assert "bus b device d: unknown sensor type 'env.th@9'" in result.stderr


def test_a_remote_config_without_a_modem_keeps_the_gateway_files_modem() -> None:
    local = load_gateway_config(CONFIG / "gateways" / "zhuganxiang-gw-03.yaml").device_set()
    assert local.modem is not None
    kept = remote_device_set({"buses": []}, local)
    assert kept.buses == [] and kept.modem == local.modem
    assert remote_device_set({"buses": [], "modem": None}, local).modem is None  # said so: removed
