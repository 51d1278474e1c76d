"""`yiwang bench edge`: the Modbus bus and the real agent, against real emulated hardware.

- The slaves: 30 units × 4 input registers behind one socat pty pair, a pymodbus RTU server in its
  own process (so its work does not take the master's GIL) that holds each answer for the time its
  frames would take on a 9,600-baud 8N1 wire (a pty has no baud rate). It timestamps every request:
  the arrival of its frame and the sending of its answer. Requests are counted there, not by the
  master. ``ceiling_wire_ms_per_cycle`` is what the frames alone cost at 9,600 baud.
- Bus efficiency: :class:`edge.sources.modbus.ModbusBus` alone polls every device, with and without
  coalescing (``requests_per_cycle``, ``requests_per_cycle_uncoalesced``, ``bus_cycle_ms``).
- The agent: ``yiwang edge run`` as a child process with a real Mosquitto, no camera. Polling
  back-to-back, the slaves see ``bus_overhead_ms_per_request`` (from an answer sent to the next
  request's arrival: the master's turnaround beyond the wire model, p50/p99) and ``cycle_ms`` (from
  one request to a unit to the next); then again with a CPU-burning process on the other core
  (``…_loaded``), the agent and the emulated hardware pinned to the remaining core. Polled every
  second beside the busy core, ``readings_per_device_per_s_loaded`` is counted at an MQTT
  subscriber. ``rss_mb`` is the agent's peak resident set (``VmHWM``). An agent that published no
  readings yields no figure: the bench raises.

Prints one JSON object; the spool issue's figures join the same object.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass
class _Pid:
    """Where :func:`_pty_pair` tells the caller socat's pid (to pin it beside the agent)."""

    pid: int | None = None


@contextlib.contextmanager
def _pty_pair(*, started: _Pid | None = None, cpus: set[int] | None = None) -> Iterator[tuple[str, str]]:
    """A socat pty pair: (device end, gateway end)."""
    workdir = Path(tempfile.mkdtemp(prefix="yiwang-bench-pty-"))
    a, b = workdir / "device", workdir / "gateway"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if started is not None:
        started.pid = proc.pid
    if cpus is not None:
        _pin(proc.pid, cpus)
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


@dataclass(frozen=True)
class SlaveRequest:
    """One request as the slaves saw it (``time.monotonic_ns``, comparable across processes)."""

    unit: int
    arrived_ns: int  # the first bytes of the request frame
    answered_ns: int  # the answer handed to the pty


@dataclass
class SlaveLog:
    """What the slave process saw; filled when its ``with`` block ends."""

    pid: int = 0
    requests: list[SlaveRequest] = field(default_factory=list)

    def between(self, start_ns: int, end_ns: int) -> list[SlaveRequest]:
        return [r for r in self.requests if start_ns <= r.arrived_ns < end_ns]


def overhead_ms(requests: list[SlaveRequest]) -> list[float]:
    """Per request, the master's time beyond the wire model: previous answer sent → this request in."""
    return [(b.arrived_ns - a.answered_ns) / 1e6 for a, b in itertools.pairwise(requests)]


def cycle_ms(requests: list[SlaveRequest]) -> float:
    """Mean time from one request to a unit to the next request to the same unit."""
    by_unit: dict[int, list[int]] = {}
    for r in requests:
        by_unit.setdefault(r.unit, []).append(r.arrived_ns)
    gaps = [(b - a) / 1e6 for times in by_unit.values() for a, b in itertools.pairwise(times)]
    if not gaps:
        raise RuntimeError("the slaves saw no unit polled twice: no cycle to measure")
    return statistics.fmean(gaps)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        raise RuntimeError("the slaves saw no requests")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _wire_delay(arrivals: list[int]) -> Any:
    """The slaves' action: answer when the exchange would end on the wire, counted from the request's
    arrival (``arrivals[-1]``), so the emulator's own decoding is not added to the wire time."""

    async def action(
        fc: int, start: int, address: int, count: int, regs: list[int], setv: Any
    ) -> ExcCodes | None:
        arrived = arrivals[-1] if arrivals else time.monotonic_ns()
        end_ns = arrived + int(wire_s(count) * 1e9)
        # The loop's timers round up to a millisecond; the last stretch is slept precisely (this
        # process has nothing else to do while one request is on the wire).
        await asyncio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9 - 0.002))
        time.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9))  # noqa: ASYNC251
        return None

    return action


async def _serve_slaves(port: str) -> list[tuple[int, int, int]]:
    """The slave process: serve until SIGTERM; every request's (unit, arrival, answer) timestamps."""
    seen: list[tuple[int, int, int]] = []
    pending: list[tuple[int, int]] = []  # the request being answered: (unit, arrival)
    arrivals: list[int] = []

    def trace(sending: bool, data: bytes) -> bytes:
        now = time.monotonic_ns()
        if sending:
            if pending:
                unit, arrived = pending.pop()
                seen.append((unit, arrived, now))
        elif not pending and data:
            pending.append((data[0], now))
            arrivals[:] = [now]
        return data

    values = [215, 550, 800, 12] + [0] * 16
    devices = [
        SimDevice(
            unit,
            simdata=[SimData(0, values=values, datatype=DataType.REGISTERS)],
            action=_wire_delay(arrivals),
        )
        for unit in range(1, DEVICES + 1)
    ]
    server = ModbusSerialServer(devices, port=port, baudrate=BAUD, trace_packet=trace)
    await server.serve_forever(background=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    print("ready", flush=True)
    await stopped.wait()
    shutdown: Any = server.shutdown  # pymodbus leaves shutdown() untyped
    await shutdown()
    return seen


@contextlib.contextmanager
def _rtu_slaves(port: str, *, cpus: set[int] | None = None) -> Iterator[SlaveLog]:
    """30 slaves (units 1..30) on one serial server in a child process; its log fills at exit."""
    log = SlaveLog()
    workdir = Path(tempfile.mkdtemp(prefix="yiwang-bench-slaves-"))
    out = workdir / "requests.json"
    child = subprocess.Popen(
        [sys.executable, "-m", "yiwang.bench.edge", "slaves", port, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            child.kill()
            err = child.stderr.read().decode()[-2000:] if child.stderr else ""
            raise RuntimeError(f"the emulated slaves did not start: {err}")
        log.pid = child.pid
        if cpus is not None:
            _pin(child.pid, cpus)
        yield log
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(15)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
        if out.exists():
            log.requests[:] = [SlaveRequest(*r) for r in json.loads(out.read_text())]
        shutil.rmtree(workdir, ignore_errors=True)


def _pin_all(pids: list[int | None], cpus: set[int]) -> None:
    for pid in pids:
        if pid:
            _pin(pid, cpus)


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (a no-op where the OS cannot pin)."""
    if not hasattr(os, "sched_setaffinity"):
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


@contextlib.contextmanager
def _busy_core() -> Iterator[set[int] | None]:
    """A CPU-burning child on the last core; yields the cores left for everything else (None: unpinned)."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        rest: set[int] | None = None
        if len(cores) >= 2:
            _pin(burner.pid, {cores[-1]})
            rest = set(cores[:-1])
        yield rest
    finally:
        burner.kill()
        burner.wait(10)


def _measure_bus(port: str, slaves: SlaveLog, *, coalesce: bool, cycles: int) -> dict[str, float]:
    profile = SensorTypeProfile.model_validate(ENV4)
    configs = [
        DeviceConfig(id=f"env-{u:02d}", type=profile.id, unit=u, poll_s=1) for u in range(1, DEVICES + 1)
    ]
    bus = ModbusBus(
        BusConfig(id="bench", kind="modbus_rtu", port=port, baudrate=BAUD, timeout_s=1.0, devices=configs),
        [BoundDevice(c, profile) for c in configs],
        coalesce=coalesce,
    )
    window: list[int] = []

    async def scenario() -> list[float]:
        times = []
        try:
            await bus.poll_all()  # connect and warm up
            window.append(time.monotonic_ns())
            for _ in range(cycles):
                started = time.perf_counter()
                await bus.poll_all()
                times.append(time.perf_counter() - started)
            window.append(time.monotonic_ns())
        finally:
            await bus.aclose()
        return times

    times = asyncio.run(scenario())
    if bus.stats.failed_requests:
        raise RuntimeError(f"bench bus had {bus.stats.failed_requests} failed requests")
    return {
        "window_start_ns": window[0],
        "window_end_ns": window[1],
        "cycle_ms": 1000 * sum(times) / len(times),
        "wire_ms_per_cycle": 1000 * sum(wire_s(b.count) for s in bus._slaves for b in s.blocks),
    }


def bus_efficiency(cycles: int = 3) -> dict[str, Any]:
    """ModbusBus alone, coalesced and not; requests counted at the slaves."""
    with _pty_pair() as (device, gateway), _rtu_slaves(device) as slaves:
        coalesced = _measure_bus(gateway, slaves, coalesce=True, cycles=cycles)
        single = _measure_bus(gateway, slaves, coalesce=False, cycles=cycles)

    def counted(m: dict[str, float]) -> float:
        return len(slaves.between(int(m["window_start_ns"]), int(m["window_end_ns"]))) / cycles

    per_cycle, per_cycle_single = counted(coalesced), counted(single)
    if not per_cycle:
        raise RuntimeError("the slaves saw no requests from the bus")
    return {
        "devices": DEVICES,
        "fields_per_device": 4,
        "baud": BAUD,
        "requests_per_cycle": per_cycle,
        "requests_per_cycle_uncoalesced": per_cycle_single,
        "request_reduction": per_cycle_single / per_cycle,
        "bus_cycle_ms": round(coalesced["cycle_ms"], 1),
        "cycle_ms_uncoalesced": round(single["cycle_ms"], 1),
        "ceiling_wire_ms_per_cycle": round(coalesced["wire_ms_per_cycle"], 1),
    }


def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    return 0


class _TelemetryCounter:
    """Readings on the gateway's telemetry topic, by device and reading time (a real subscriber)."""

    def __init__(self, port: int, topic: str) -> None:
        self.stamps: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        readings = json.loads(msg.payload)["readings"]
        with self._lock:
            self.stamps += [(r["device"], int(r["ts"])) for r in readings]

    def per_device_per_s(self, start_ms: int, end_ms: int, devices: int) -> float:
        with self._lock:
            inside = sum(1 for _, ts in self.stamps if start_ms <= ts < end_ms)
        return inside / devices / ((end_ms - start_ms) / 1000)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def _gateway_file(work: Path, port: str, mqtt_port: int, poll_s: float) -> Path:
    gw = {
        "community": "bench",
        "gateway": "gw-bench",
        "config_dir": str(work / "config"),
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "spool": {"dir": str(work / f"spool-{poll_s}")},
        "buses": [
            {
                "id": "rs485",
                "kind": "modbus_rtu",
                "port": port,
                "timeout_s": 1.0,
                "devices": [
                    {"id": f"env-{u:02d}", "type": "bench.env4@1", "unit": u, "poll_s": poll_s}
                    for u in range(1, DEVICES + 1)
                ],
            }
        ],
    }
    path = work / f"gw-{poll_s}.yaml"
    path.write_text(yaml.safe_dump(gw))
    return path


@contextlib.contextmanager
def _agent(path: Path) -> Iterator[subprocess.Popen[bytes]]:
    agent = subprocess.Popen(
        [sys.executable, "-m", "yiwang", "edge", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "YIWANG_LOG_LEVEL": "WARNING"},
    )
    try:
        yield agent
        if agent.poll() is not None:
            raise RuntimeError(
                f"agent exited: {agent.stderr.read().decode()[-2000:] if agent.stderr else ''}"
            )
    finally:
        if agent.poll() is None:
            agent.terminate()
            agent.wait(15)
        if agent.stderr:
            agent.stderr.close()


def _sleep_while_running(agent: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise RuntimeError(
                f"agent exited: {agent.stderr.read().decode()[-2000:] if agent.stderr else ''}"
            )
        time.sleep(0.1)


def _require_readings(counter: _TelemetryCounter, what: str) -> None:
    if not counter.stamps:
        raise RuntimeError(f"the agent published no readings ({what}): no figure from a silent agent")


def agent_figures(
    config_dir: Path, seconds: float = 6.0, *, agent_mqtt_port: int | None = None
) -> dict[str, Any]:
    """The real agent: bus overhead and cycle counted at the slaves, idle and beside a busy core;
    readings per device per second at an MQTT subscriber beside the busy core; peak RSS.

    ``agent_mqtt_port`` points the agent at another broker than the one the bench subscribes to
    (a test's silent agent, which must yield no figure).
    """
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-edge-"))
    broker: MosquittoServer | None = None
    try:
        types = work / "config" / "sensor-types"
        shutil.copytree(config_dir / "sensor-types", types)
        (types / "bench.env4.yaml").write_text(yaml.safe_dump(ENV4))
        broker = start_mosquitto(base_dir=work)
        topic = "yiwang/v1/bench/gw-bench/telemetry"
        peak_kb = 0
        socat = _Pid()
        with _pty_pair(started=socat) as (device, gateway), _rtu_slaves(device) as slaves:
            # Back-to-back: every device is always due, so the bus never idles between requests.
            counter = _TelemetryCounter(broker.port, topic)
            with _agent(_gateway_file(work, gateway, agent_mqtt_port or broker.port, poll_s=0.05)) as agent:
                _sleep_while_running(agent, 3)  # start, connect, warm up
                idle = (time.monotonic_ns(), 0)
                _sleep_while_running(agent, seconds)
                idle = (idle[0], time.monotonic_ns())
                with _busy_core() as rest:
                    if rest is not None:
                        _pin_all([agent.pid, slaves.pid, socat.pid, broker.pid], rest)
                    _sleep_while_running(agent, 1)
                    loaded = (time.monotonic_ns(), 0)
                    _sleep_while_running(agent, seconds)
                    loaded = (loaded[0], time.monotonic_ns())
                peak_kb = max(peak_kb, _status_kb(agent.pid, "VmHWM"))
            counter.close()
            _require_readings(counter, "polling back-to-back")
        idle_requests, loaded_requests = slaves.between(*idle), slaves.between(*loaded)
        idle_overhead, loaded_overhead = overhead_ms(idle_requests), overhead_ms(loaded_requests)

        # Polled every second, as deployed, with the busy core beside it.
        with (
            _busy_core() as rest,
            _pty_pair(started=socat, cpus=rest) as (device, gateway),
            _rtu_slaves(device, cpus=rest),
        ):
            if rest is not None and broker.pid:
                _pin(broker.pid, rest)
            counter = _TelemetryCounter(broker.port, topic)
            with _agent(_gateway_file(work, gateway, agent_mqtt_port or broker.port, poll_s=1)) as agent:
                if rest is not None:
                    _pin(agent.pid, rest)
                _sleep_while_running(agent, 3)
                start_ms = time.time_ns() // 1_000_000
                _sleep_while_running(agent, 2 * seconds)
                end_ms = time.time_ns() // 1_000_000
                _sleep_while_running(agent, 1.5)  # let the window's last readings arrive
                peak_kb = max(peak_kb, _status_kb(agent.pid, "VmHWM"))
            counter.close()
            _require_readings(counter, "polling every second")
            delivered = counter.per_device_per_s(start_ms, end_ms, DEVICES)
            published = len(counter.stamps)
        return {
            "bus_overhead_ms_per_request_p50": round(_percentile(idle_overhead, 0.5), 2),
            "bus_overhead_ms_per_request_p99": round(_percentile(idle_overhead, 0.99), 2),
            "bus_overhead_ms_per_request_loaded_p50": round(_percentile(loaded_overhead, 0.5), 2),
            "bus_overhead_ms_per_request_loaded_p99": round(_percentile(loaded_overhead, 0.99), 2),
            "cycle_ms": round(cycle_ms(idle_requests), 1),
            "cycle_ms_loaded": round(cycle_ms(loaded_requests), 1),
            "readings_per_device_per_s_loaded": round(delivered, 3),
            "rss_mb": round(peak_kb / 1024, 1),
            "rss_devices": DEVICES,
            "rss_readings_published": published,
            "agent_seconds": seconds,
        }
    finally:
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
    return {"area": "edge", **bus_efficiency(), **agent_figures(config_dir), **spool_figures()}


if __name__ == "__main__" and sys.argv[1:2] == ["slaves"]:
    Path(sys.argv[3]).write_text(json.dumps(asyncio.run(_serve_slaves(sys.argv[2]))))
