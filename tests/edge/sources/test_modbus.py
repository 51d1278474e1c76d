"""Modbus RTU on a real pymodbus serial server behind a socat pty pair, and Modbus TCP on loopback."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from contract.catalog import load_model
from contract.profiles import SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import BoundDevice, SourceBatch
from edge.sources.modbus import ModbusBus, ModbusTcpBus
from tests.edge.sources.emulators import ModbusEmulator, Slave, pty_pair
from yiwang.servers import free_port

CONFIG = Path(__file__).resolve().parents[3] / "config" / "sensor-types"


def profile(name: str) -> SensorTypeProfile:
    return load_model(SensorTypeProfile, CONFIG / f"{name}.yaml")


def float_words_swapped(value: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return lo, hi  # low word first: the meter's word order


def th_slave(unit: int, temp_tenths: int, hum_tenths: int, **kw: object) -> Slave:
    return Slave(unit, {1: temp_tenths & 0xFFFF, 2: hum_tenths}, **kw)  # type: ignore[arg-type]


def bound(dev_id: str, type_name: str, unit: int, **kw: object) -> BoundDevice:
    p = profile(type_name)
    return BoundDevice(DeviceConfig(id=dev_id, type=p.id, unit=unit, poll_s=0.2, **kw), p)  # type: ignore[arg-type]


async def read_until(bus: ModbusBus, n: int) -> list[SourceBatch]:
    return [await bus.read() for _ in range(n)]


@pytest.mark.integration
def test_several_slaves_on_one_rtu_bus_including_faulty_ones() -> None:
    meter = Slave(5, dict(enumerate(float_words_swapped(230.5))))
    meter.registers.update({6 + i: w for i, w in enumerate(float_words_swapped(1.25))})
    meter.registers.update({12 + i: w for i, w in enumerate(float_words_swapped(287.5))})
    meter.registers.update({256 + i: w for i, w in enumerate(float_words_swapped(1234.5))})
    slaves = [
        th_slave(1, -52, 551),
        th_slave(2, 215, 600, delay_s=0.15),  # slow but within the timeout
        th_slave(3, 215, 600, silent=True),  # times out
        th_slave(4, 215, 600, corrupt=True),  # CRC garbage
        meter,
    ]
    devices = [
        bound("th-1", "env.th", 1),
        bound("th-2", "env.th", 2),
        bound("th-3", "env.th", 3),
        bound("th-4", "env.th", 4),
        bound("pm-5", "power.meter", 5),
    ]
    with pty_pair() as pty, ModbusEmulator(slaves, port=pty.device):
        bus = ModbusBus(
            BusConfig(
                id="rs485-1",
                kind="modbus_rtu",
                port=pty.gateway,
                timeout_s=0.4,
                devices=[d.config for d in devices],
            ),
            devices,
        )

        async def scenario() -> list[SourceBatch]:
            try:
                return await read_until(bus, 5)
            finally:
                await bus.aclose()

        batches = asyncio.run(scenario())

    readings = {r.device: r.values for b in batches for r in b.readings}
    events = {e.device: e for b in batches for e in b.events}
    assert readings["th-1"] == {"temperature": pytest.approx(-5.2), "humidity": pytest.approx(55.1)}
    assert readings["th-2"] == {"temperature": pytest.approx(21.5), "humidity": pytest.approx(60.0)}
    assert readings["pm-5"] == {
        "voltage_v": pytest.approx(230.5),
        "current_a": pytest.approx(1.25),
        "power_kw": pytest.approx(0.2875),
        "energy_kwh": pytest.approx(1234.5),
    }
    # No fake values for the silent and the garbled slave: they are unavailable, with a reason.
    assert "th-3" not in readings and "th-4" not in readings
    assert events["th-3"].kind == "device.unavailable" and events["th-4"].kind == "device.unavailable"
    assert "no valid answer" in str(events["th-3"].attrs["reason"])
    # Coalesced: env.th is one request (registers 1-2); the meter's 0-13 is one, 256-257 another.
    assert bus.stats.per_device["th-1"] == 1
    assert bus.stats.per_device["pm-5"] == 2
    assert slaves[0].requests == 1
    # Retried once before giving up.
    assert bus.stats.per_device["th-3"] == 2


@pytest.mark.integration
def test_a_slave_that_comes_back_is_reported_available_and_in_full() -> None:
    slave = th_slave(7, 200, 500, silent=True)
    dev = bound("th-7", "env.th", 7)
    with pty_pair() as pty, ModbusEmulator([slave], port=pty.device):
        bus = ModbusBus(
            BusConfig(
                id="rs485-2",
                kind="modbus_rtu",
                port=pty.gateway,
                timeout_s=0.2,
                retries=0,
                devices=[dev.config],
            ),
            [dev],
        )

        async def scenario() -> tuple[SourceBatch, SourceBatch]:
            try:
                down = await bus.read()
                slave.silent = False
                return down, await bus.read()
            finally:
                await bus.aclose()

        down, up = asyncio.run(scenario())
    assert [e.kind for e in down.events] == ["device.unavailable"]
    assert [e.kind for e in up.events] == ["device.available"]
    assert up.readings[0].values == {"temperature": pytest.approx(20.0), "humidity": pytest.approx(50.0)}


@pytest.mark.integration
def test_report_on_change_with_deadband() -> None:
    slave = th_slave(1, 200, 500)
    dev = bound("th-1", "env.th", 1, deadband={"temperature": 0.5, "humidity": 1.0}, max_interval_s=3600)
    with pty_pair() as pty, ModbusEmulator([slave], port=pty.device) as emu:
        bus = ModbusBus(
            BusConfig(id="rs485-3", kind="modbus_rtu", port=pty.gateway, devices=[dev.config]), [dev]
        )

        async def scenario() -> list[SourceBatch]:
            out = [await bus.read()]
            emu.set_register(1, 1, 203)  # +0.3 °C: inside the deadband
            out.append(await bus.read())
            emu.set_register(1, 1, 210)  # +1.0 °C: reported
            out.append(await bus.read())
            await bus.aclose()
            return out

        first, quiet, moved = asyncio.run(scenario())
    assert len(first.readings) == 1
    assert not quiet.readings
    assert moved.readings[0].values["temperature"] == pytest.approx(21.0)


@pytest.mark.integration
def test_modbus_tcp_on_loopback() -> None:
    port = free_port()
    dev = bound("wl-1", "water.level", 9)
    with ModbusEmulator([Slave(9, {4: 1234})], tcp_port=port):
        bus = ModbusTcpBus(
            BusConfig(id="tcp-1", kind="modbus_tcp", host="127.0.0.1", tcp_port=port, devices=[dev.config]),
            [dev],
        )

        async def scenario() -> SourceBatch:
            try:
                return await bus.read()
            finally:
                await bus.aclose()

        batch = asyncio.run(scenario())
    assert batch.readings[0].values == {"level_cm": pytest.approx(123.4)}
