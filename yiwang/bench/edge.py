"""`yiwang bench edge`: Modbus bus efficiency and agent memory, against real emulated hardware.

- Bus efficiency: 30 slaves × 4 fields behind one socat pty pair, a pymodbus RTU server that holds each
  answer for the time its frames would take on a 9,600-baud 8N1 wire (a pty has no baud rate), polled
  by :class:`edge.sources.modbus.ModbusBus` with and without coalescing. The ceiling is the wire model
  itself: ``wire_ms_per_cycle`` is what the frames alone cost at 9,600 baud.
- Memory: ``yiwang edge run`` as a child process with 30 Modbus devices polled every second, a real
  Mosquitto, no camera; ``rss_mb`` is its peak resident set while telemetry flows.

Prints one JSON object; the spool issue's figures join the same object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from contract.profiles import SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import BoundDevice
from edge.sources.modbus import ModbusBus
from yiwang.servers import MosquittoServer, start_mosquitto

DEVICES = 30
BAUD = 9600
BITS_PER_CHAR = 10  # 8N1
# A 4-in-1 room sensor (temperature, humidity, CO2, PM2.5) in four adjacent input registers.
ENV4: dict[str, Any] = {
    "id": "bench.env4@1",
    "name": "4-in-1 room sensor (bench)",
    "expected_interval_s": 1,
    "fields": {
        "temperature": {"type": "float", "min": -40, "max": 85},
        "humidity": {"type": "float", "min": 0, "max": 100},
        "co2_ppm": {"type": "float", "min": 0, "max": 10000},
        "pm2_5": {"type": "float", "min": 0, "max": 1000},
    },
    "protocol": {
        "kind": "modbus",
        "fields": {
            "temperature": {"function": "input", "address": 0, "data_type": "int16", "scale": 0.1},
            "humidity": {"function": "input", "address": 1, "data_type": "uint16", "scale": 0.1},
            "co2_ppm": {"function": "input", "address": 2, "data_type": "uint16"},
            "pm2_5": {"function": "input", "address": 3, "data_type": "uint16"},
        },
    },
}


def wire_s(count: int) -> float:
    """Wire time of a read of ``count`` registers at 9,600 baud: request, answer, two 3.5-char gaps."""
    chars = 8 + (5 + 2 * count) + 7
    return chars * BITS_PER_CHAR / BAUD


@contextlib.contextmanager
def _pty_pair() -> Iterator[tuple[str, str]]:
    workdir = Path(tempfile.mkdtemp(prefix="yiwang-bench-pty-"))
    a, b = workdir / "device", workdir / "gateway"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.01)
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


async def _wire_delay(
    fc: int, start: int, address: int, count: int, regs: list[int], setv: Any
) -> ExcCodes | None:
    await asyncio.sleep(wire_s(count))
    return None


@contextlib.contextmanager
def _rtu_slaves(port: str) -> Iterator[None]:
    """30 slaves (units 1..30) on one serial server in its own thread and loop."""
    loop = asyncio.new_event_loop()
    box: dict[str, ModbusSerialServer] = {}
    ready = threading.Event()

    async def start() -> None:
        values = [215, 550, 800, 12] + [0] * 16
        devices = [
            SimDevice(
                unit, simdata=[SimData(0, values=values, datatype=DataType.REGISTERS)], action=_wire_delay
            )
            for unit in range(1, DEVICES + 1)
        ]
        box["server"] = ModbusSerialServer(devices, port=port, baudrate=BAUD)
        await box["server"].serve_forever(background=True)

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield
    finally:
        if "server" in box:
            server: Any = box["server"]  # pymodbus leaves shutdown() untyped
            asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _measure_bus(port: str, *, coalesce: bool, cycles: int) -> dict[str, float]:
    profile = SensorTypeProfile.model_validate(ENV4)
    configs = [
        DeviceConfig(id=f"env-{u:02d}", type=profile.id, unit=u, poll_s=1) for u in range(1, DEVICES + 1)
    ]
    bus = ModbusBus(
        BusConfig(id="bench", kind="modbus_rtu", port=port, baudrate=BAUD, timeout_s=1.0, devices=configs),
        [BoundDevice(c, profile) for c in configs],
        coalesce=coalesce,
    )

    async def scenario() -> list[float]:
        times = []
        try:
            await bus.poll_all()  # connect and warm up
            bus.stats.requests = 0
            for _ in range(cycles):
                started = time.perf_counter()
                await bus.poll_all()
                times.append(time.perf_counter() - started)
        finally:
            await bus.aclose()
        return times

    times = asyncio.run(scenario())
    if bus.stats.failed_requests:
        raise RuntimeError(f"bench bus had {bus.stats.failed_requests} failed requests")
    return {
        "requests_per_cycle": bus.stats.requests / cycles,
        "cycle_ms": 1000 * sum(times) / len(times),
        "wire_ms_per_cycle": 1000 * sum(wire_s(b.count) for s in bus._slaves for b in s.blocks),
    }


def bus_efficiency(cycles: int = 3) -> dict[str, Any]:
    with _pty_pair() as (device, gateway), _rtu_slaves(device):
        coalesced = _measure_bus(gateway, coalesce=True, cycles=cycles)
        single = _measure_bus(gateway, coalesce=False, cycles=cycles)
    return {
        "devices": DEVICES,
        "fields_per_device": 4,
        "baud": BAUD,
        "requests_per_cycle": coalesced["requests_per_cycle"],
        "requests_per_cycle_uncoalesced": single["requests_per_cycle"],
        "request_reduction": single["requests_per_cycle"] / coalesced["requests_per_cycle"],
        "cycle_ms": round(coalesced["cycle_ms"], 1),
        "cycle_ms_uncoalesced": round(single["cycle_ms"], 1),
        "ceiling_wire_ms_per_cycle": round(coalesced["wire_ms_per_cycle"], 1),
    }


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def agent_memory(config_dir: Path, seconds: float = 10.0) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-edge-"))
    procs: list[subprocess.Popen[bytes]] = []
    broker: MosquittoServer | None = None
    try:
        types = work / "config" / "sensor-types"
        shutil.copytree(config_dir / "sensor-types", types)
        (types / "bench.env4.yaml").write_text(yaml.safe_dump(ENV4))
        broker = start_mosquitto(base_dir=work)
        mqtt_port = broker.port
        with _pty_pair() as (device, gateway), _rtu_slaves(device):
            gw = {
                "community": "bench",
                "gateway": "gw-bench",
                "config_dir": str(work / "config"),
                "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
                "spool": {"dir": str(work / "spool")},
                "buses": [
                    {
                        "id": "rs485",
                        "kind": "modbus_rtu",
                        "port": gateway,
                        "timeout_s": 1.0,
                        "devices": [
                            {"id": f"env-{u:02d}", "type": "bench.env4@1", "unit": u, "poll_s": 1}
                            for u in range(1, DEVICES + 1)
                        ],
                    }
                ],
            }
            path = work / "gw.yaml"
            path.write_text(yaml.safe_dump(gw))
            readings = [0]
            sub = mqtt.Client(CallbackAPIVersion.VERSION2)
            sub.on_message = lambda c, u, m: readings.__setitem__(
                0, readings[0] + len(json.loads(m.payload)["readings"])
            )
            time.sleep(0.3)
            sub.connect("127.0.0.1", mqtt_port)
            sub.subscribe("yiwang/v1/bench/gw-bench/telemetry", qos=1)
            sub.loop_start()
            agent = subprocess.Popen(
                [sys.executable, "-m", "yiwang", "edge", "run", "--config", str(path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "YIWANG_LOG_LEVEL": "WARNING"},
            )
            procs.append(agent)
            peak = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and agent.poll() is None:
                peak = max(peak, _rss_kb(agent.pid))
                time.sleep(0.2)
            if agent.poll() is not None:
                raise RuntimeError(f"agent exited: {agent.stderr.read().decode() if agent.stderr else ''}")
            agent.terminate()
            agent.wait(15)
            sub.loop_stop()
            sub.disconnect()
        return {
            "rss_mb": round(peak / 1024, 1),
            "rss_devices": DEVICES,
            "rss_readings_published": readings[0],
            "rss_seconds": seconds,
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            if proc.stderr:
                proc.stderr.close()
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def spool_figures(readings: int = 2_000_000) -> dict[str, Any]:
    """The spool's figures (:mod:`yiwang.bench.edge_spool`), in a child process against a real Mosquitto."""
    with start_mosquitto() as broker:
        child = subprocess.run(
            [sys.executable, "-m", "yiwang.bench.edge_spool", str(broker.port), str(readings)],
            capture_output=True,
            check=False,
            timeout=600,
        )
        if child.returncode != 0:
            raise RuntimeError(f"spool bench failed: {child.stderr.decode()[-2000:]}")
        figures: dict[str, Any] = json.loads(child.stdout)
        return figures


def run(config_dir: Path) -> dict[str, Any]:
    return {"area": "edge", **bus_efficiency(), **agent_memory(config_dir), **spool_figures()}
