"""Every built-in source passes the source contract; the registry loads and checks plugins."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from contract.catalog import load_model
from contract.profiles import SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import SOURCE_API_VERSION, BoundDevice, ConfigError
from edge.sources.registry import BUILTIN, check_factory, load_sources
from tests.edge.sources.emulators import ModbusEmulator, Slave, pty_pair, run_line_emitter
from tests.edge.sources.source_contract import check_failing_channel, check_source
from yiwang.servers import free_port

TYPES = Path(__file__).resolve().parents[3] / "config" / "sensor-types"
CAMERA = load_model(SensorTypeProfile, TYPES / "camera.events.yaml")


def bound(dev: str, type_name: str, **kw: object) -> BoundDevice:
    p = load_model(SensorTypeProfile, TYPES / f"{type_name}.yaml")
    return BoundDevice(DeviceConfig(id=dev, type=p.id, poll_s=0.1, max_interval_s=0.001, **kw), p)  # type: ignore[arg-type]


@pytest.mark.integration
def test_modbus_rtu_passes_the_contract() -> None:
    devices = [bound("th-1", "env.th", unit=1), bound("wl-2", "water.level", unit=2)]
    with pty_pair() as pty, ModbusEmulator([Slave(1, {1: 100, 2: 200}), Slave(2, {4: 50})], port=pty.device):
        bus = BusConfig(id="b", kind="modbus_rtu", port=pty.gateway, devices=[d.config for d in devices])
        readings = check_source(BUILTIN["modbus_rtu"], bus, devices, CAMERA, reads=2)
    assert {r.device for r in readings} == {"th-1", "wl-2"}


@pytest.mark.integration
def test_modbus_tcp_passes_the_contract() -> None:
    port = free_port()
    devices = [bound("gas-1", "gas.combustible", unit=4)]
    with ModbusEmulator([Slave(4, {0: 0x4120, 1: 0})], tcp_port=port):
        bus = BusConfig(
            id="t", kind="modbus_tcp", host="127.0.0.1", tcp_port=port, devices=[d.config for d in devices]
        )
        readings = check_source(BUILTIN["modbus_tcp"], bus, devices, CAMERA, reads=1)
    assert readings[0].values == {"lel_pct": 10.0}


@pytest.mark.integration
def test_serial_line_passes_the_contract() -> None:
    devices = [bound("pm-1", "air.pm")]
    with pty_pair() as pty:
        bus = BusConfig(id="l", kind="serial_line", port=pty.gateway, devices=[d.config for d in devices])
        # The emitter writes a line every 20 ms for a while: whenever the source opens, data flows.
        join = run_line_emitter(pty.device, [b"1,2,3\n"] * 200, gap_s=0.02)
        try:
            check_source(BUILTIN["serial_line"], bus, devices, CAMERA, reads=2)
        finally:
            join()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["modbus_rtu", "modbus_tcp", "serial_line"])
def test_a_missing_channel_is_unavailable_not_a_crash(kind: str, tmp_path: Path) -> None:
    devices = [bound("th-1", "env.th", unit=1)] if kind != "serial_line" else [bound("gps-1", "geo.gps")]
    bus = BusConfig(
        id="gone",
        kind=kind,
        port=str(tmp_path / "no-such-tty"),
        host="127.0.0.1",
        tcp_port=free_port(),
        timeout_s=0.2,
        devices=[d.config for d in devices],
    )
    events = check_failing_channel(BUILTIN[kind], bus, devices)
    assert events[0].kind == "device.unavailable"


class _Future:
    api_version: ClassVar[int] = SOURCE_API_VERSION + 1

    def __init__(self, bus: BusConfig, devices: list[BoundDevice]) -> None:
        raise AssertionError("never constructed")


def test_a_plugin_of_another_api_version_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"source 'knx'.*speaks Source API version 2, this agent speaks 1"):
        check_factory("knx", _Future)


def test_builtins_are_registered() -> None:
    assert {"modbus_rtu", "modbus_tcp", "serial_line"} <= set(load_sources())
