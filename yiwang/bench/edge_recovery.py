"""`yiwang bench edge`, recovery and CPU part: a real agent losing its broker, and its CPU budget.

Both run ``yiwang edge run`` as a child process polling the 30 emulated Modbus RTU slaves of
:mod:`yiwang.bench.edge` (one socat pty pair, 9,600-baud wire timing) every second, publishing to a
real Mosquitto; a subscriber with a persistent session records every reading's arrival.

:func:`recovery_figures` stops the broker (SIGTERM, persistence kept) for ``outage_s`` and starts it
again on the same port:

- ``reconnect_s``: broker accepting connections again (its port answers) → the first telemetry
  message of the agent seen by the subscriber, which itself reconnects within ~0.1 s. The broker
  PUBACKs that message as it forwards it, so this is also the agent's first PUBACK.
  ``reconnect_connack_s`` is the agent's own view: the timestamp of the birth ``state`` it publishes
  from its on-connect callback.
- ``backlog_drain_s``: broker back → the last reading taken during the outage received.
- ``outage_readings_lost``: poll periods of the outage in which a device has no reading at the
  subscriber (the expected set: one reading per device per period, the period measured as the
  median gap of the run), plus readings the spool gave up. ``outage_seq_gaps``: seqs never received.
- ``live_delay_during_drain_ms_p99``: reading timestamp → arrival, p99, over the readings taken from
  the agent's reconnect until the backlog was delivered (at least two poll periods, because a 60 s
  backlog of one bus is delivered in well under one); ``live_delay_before_outage_ms_p99`` is the
  same over the last seconds before the outage, for comparison.

:func:`cpu_figures` reads the agent's utime + stime from ``/proc/<pid>/stat`` over ``seconds`` once
telemetry flows, normalised to a minute, for the bus alone and with one 640×480 camera at 10 fps
(a synthetic clip, MJPEG, replayed at its frame rate) analysed in the same agent; beside each, the
bus's readings per device per second (1.0 meets the 1 s period).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge.spool import Spool
from yiwang.bench.edge import DEVICES, ENV4, _pty_pair, _rtu_slaves
from yiwang.servers import MosquittoServer, start_mosquitto

COMMUNITY = "bench"
POLL_S = 1.0
CAMERA_SIZE = (640, 480)
CAMERA_SCENARIO = "two-visits"
STEADY_S = 6.0
Key = tuple[str, int]  # (device, ts)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def device_ids() -> list[str]:
    return [f"env-{u:02d}" for u in range(1, DEVICES + 1)]


# --- accounting ----------------------------------------------------------------------------------


def median_period_ms(received: Iterable[Key]) -> float:
    """The poll period as the bus kept it: the median gap between a device's consecutive readings."""
    by_device: dict[str, list[int]] = {}
    for device, ts in received:
        by_device.setdefault(device, []).append(ts)
    gaps = [b - a for series in by_device.values() for a, b in itertools.pairwise(sorted(series))]
    if not gaps:
        raise ValueError("too few readings to tell the poll period")
    return float(statistics.median(gaps))


def missing_readings(
    received: Iterable[Key], devices: Sequence[str], start_ms: int, end_ms: int, period_ms: float
) -> dict[str, int]:
    """Poll periods in [start_ms, end_ms] without a received reading, per device (absent: none missing).

    Each device is followed from its last reading before the window to its first one after it; a gap
    of g ms between consecutive readings hides round(g / period) - 1 readings once it exceeds 1.5
    periods (a slow cycle stretches gaps, it does not double them). A device with nothing after the
    window is missing everything from its last reading to ``end_ms``.
    """
    by_device: dict[str, list[int]] = {d: [] for d in devices}
    for device, ts in received:
        if device in by_device:
            by_device[device].append(ts)
    missing: dict[str, int] = {}
    for device, series in by_device.items():
        series.sort()
        before = [ts for ts in series if ts < start_ms]
        after = [ts for ts in series if ts > end_ms]
        inside = [ts for ts in series if start_ms <= ts <= end_ms]
        points = before[-1:] + inside + after[:1]
        if not points:
            lost = round((end_ms - start_ms) / period_ms) + 1
        else:
            lost = sum(
                round((b - a) / period_ms) - 1
                for a, b in itertools.pairwise(points)
                if b - a > 1.5 * period_ms
            )
            if not before:
                lost += max(0, round((points[0] - start_ms) / period_ms))
            if not after:
                lost += max(0, round((end_ms - points[-1]) / period_ms))
        if lost:
            missing[device] = lost
    return missing


def missing_seqs(received: Iterable[int], last_seq: int) -> list[int]:
    """Seqs from the first one received to the spool's last that never arrived (a lost message)."""
    seen = set(received)
    if not seen:
        return list(range(1, last_seq + 1))
    return sorted(set(range(min(seen), last_seq + 1)) - seen)


def p99(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# --- the subscriber ------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Every reading's first arrival (wall ms), the seqs seen and the agent's birth states."""

    arrivals: dict[Key, int] = field(default_factory=dict)
    seqs: set[int] = field(default_factory=set)
    online_states: list[int] = field(default_factory=list)  # ts of each online state published live
    cameras: dict[str, Any] = field(default_factory=dict)  # the last state's camera health
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = _wall_ms()
        body = json.loads(msg.payload)
        kind = msg.topic.rsplit("/", 1)[-1]
        with self.lock:
            if kind == "telemetry":
                self.seqs.add(body["seq"])
                for r in body["readings"]:
                    self.arrivals.setdefault((r["device"], r["ts"]), now)
            elif kind == "event":
                self.seqs.add(body["seq"])
            elif kind == "state" and body.get("online") and not msg.retain:
                self.online_states.append(body["ts"])
                self.cameras = body.get("cameras", self.cameras)

    def snapshot(self) -> dict[Key, int]:
        with self.lock:
            return dict(self.arrivals)


@contextlib.contextmanager
def _subscriber(port: int, gateway: str, recorder: Recorder) -> Iterator[None]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-recorder-{gateway}", clean_session=False
    )
    # Back within a tenth of a second of the broker, so the agent's reconnect is what is measured.
    cast(Any, client).reconnect_delay_set(0.05, 0.1)  # paho's stubs say int; it sleeps floats
    subscribed = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"yiwang/v1/{COMMUNITY}/{gateway}/+", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = recorder.on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise RuntimeError("bench subscriber: subscription not acknowledged")
        yield
    finally:
        client.disconnect()
        client.loop_stop()


# --- the agent -----------------------------------------------------------------------------------


def _write_config(
    work: Path, config_dir: Path, gateway: str, mqtt_port: int, bus_port: str, cameras: Path | None
) -> Path:
    types = work / "config" / "sensor-types"
    if not types.exists():
        shutil.copytree(config_dir / "sensor-types", types)
        (types / "bench.env4.yaml").write_text(yaml.safe_dump(ENV4))
    devices = [
        # max_interval_s below the period: every successful poll is a reading, so gaps mean misses.
        {"id": d, "type": ENV4["id"], "unit": u, "poll_s": POLL_S, "max_interval_s": POLL_S / 2}
        for u, d in enumerate(device_ids(), start=1)
    ]
    gw: dict[str, Any] = {
        "community": COMMUNITY,
        "gateway": gateway,
        "config_dir": str(work / "config"),
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "spool": {"dir": str(work / "spool")},
        "metrics": {"port": None},
        "state_interval_s": 5,
        "buses": [
            {"id": "rs485", "kind": "modbus_rtu", "port": bus_port, "timeout_s": 1.0, "devices": devices}
        ],
    }
    if cameras is not None:
        gw["cameras"] = str(cameras)
    path = work / f"{gateway}.yaml"
    path.write_text(yaml.safe_dump(gw))
    return path


def _camera_config(work: Path, gateway: str) -> Path:
    from edge.camera.synthetic import BY_NAME, FIRE_LANE, PRIVACY  # OpenCV only for this part

    clip = BY_NAME[CAMERA_SCENARIO].write(work / "camera.avi", seed=1, size=CAMERA_SIZE)
    cameras = {
        "community": COMMUNITY,
        "gateway": gateway,
        "spool": str(work / "cameras.sqlite3"),
        "http": {"port": 0},
        "cameras": [
            {
                "id": "cam-bench",
                "source": str(clip),
                "max_fps": 10,
                "privacy_masks": [[list(p) for p in PRIVACY]],
                "zones": [{"id": "fire-lane", "polygon": [list(p) for p in FIRE_LANE]}],
            }
        ],
    }
    path = work / "cameras.yaml"
    path.write_text(yaml.safe_dump(cameras))
    return path


@contextlib.contextmanager
def _agent(config: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("ab") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "yiwang", "edge", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "YIWANG_LOG_LEVEL": "INFO"},
        )
    try:
        yield agent
    finally:
        if agent.poll() is None:
            agent.terminate()
            try:
                agent.wait(20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(5)


def _wait(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    agent: subprocess.Popen[bytes],
    *,
    required: bool = True,
) -> None:
    """Wait until ``condition``; a timeout raises only when ``required`` (else the figures tell it)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with code {agent.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            if not required:
                return
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _all_reporting(recorder: Recorder, since_ms: int, count: int = 2) -> Callable[[], bool]:
    def check() -> bool:
        arrivals = recorder.snapshot()
        return all(
            sum(1 for (d, ts) in arrivals if d == device and ts >= since_ms) >= count
            for device in device_ids()
        )

    return check


def _cpu_s(pid: int) -> float:
    # Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _bench_bus(work: Path) -> Iterator[tuple[MosquittoServer, str]]:
    broker = start_mosquitto(base_dir=work)
    try:
        with _pty_pair() as (device, gateway), _rtu_slaves(device):
            yield broker, gateway
    finally:
        broker.stop()


def _spool_stats(work: Path, gateway: str) -> tuple[int, int]:
    """(last seq, items given up by the overflow policy) of the stopped agent's spool."""
    with Spool(work / "spool" / COMMUNITY / f"{gateway}.sqlite3") as spool:
        stats = spool.stats()
    return stats.last_seq, sum(stats.dropped.values())


def _log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-20:])


# --- the figures ---------------------------------------------------------------------------------


def recovery_figures(config_dir: Path, outage_s: float = 60.0) -> dict[str, Any]:
    """A broker outage of ``outage_s`` seconds under a polling agent: see the module docstring."""
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-recovery-"))
    gateway = "gw-recovery"
    recorder = Recorder()
    log_path = work / "agent.log"
    try:
        with _bench_bus(work) as (broker, bus_port):
            config = _write_config(work, config_dir, gateway, broker.port, bus_port, None)
            with _subscriber(broker.port, gateway, recorder), _agent(config, log_path) as agent:
                try:
                    started_ms = _wall_ms()
                    _wait(_all_reporting(recorder, started_ms), 60, "telemetry from every device", agent)
                    time.sleep(STEADY_S)  # the live delay before the outage, to compare the drain's with
                    halted_ms = _wall_ms()
                    broker.halt()
                    time.sleep(outage_s)
                    broker.start()
                    back_ms = _wall_ms()
                    settle_s = outage_s + 60

                    def delivered() -> bool:
                        arrivals = recorder.snapshot()
                        period = median_period_ms(arrivals)
                        after = all(
                            any(d == device and ts > back_ms for d, ts in arrivals) for device in device_ids()
                        )
                        return after and not missing_readings(
                            arrivals, device_ids(), halted_ms, back_ms, period
                        )

                    # Not required: readings that never come are what outage_readings_lost reports.
                    _wait(delivered, settle_s, "every reading of the outage", agent, required=False)
                    time.sleep(3 * POLL_S)  # live readings after the drain, for the period and delays
                finally:
                    agent.terminate()
                    agent.wait(20)
                if agent.returncode not in (0, -15):
                    raise RuntimeError(f"the agent exited with code {agent.returncode} when stopped")
        last_seq, dropped = _spool_stats(work, gateway)
    except RuntimeError as err:
        raise RuntimeError(f"{err}\nagent log:\n{_log_tail(log_path)}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return recovery_from(recorder, halted_ms, back_ms, last_seq, dropped, outage_s)


def recovery_from(
    recorder: Recorder, halted_ms: int, back_ms: int, last_seq: int, dropped: int, outage_s: float
) -> dict[str, Any]:
    """The recovery figures from what the subscriber recorded (``dropped``, ``last_seq``: the spool's)."""
    arrivals = recorder.snapshot()
    period = median_period_ms(arrivals)
    lost = missing_readings(arrivals, device_ids(), halted_ms, back_ms, period)
    # Only readings taken well after the halt: one the broker accepted just before it went down may
    # reach the subscriber from the broker's persistence after the restart, before the agent is back.
    first_after = min(
        (at for (_d, ts), at in arrivals.items() if at >= back_ms and ts >= halted_ms + 1000), default=None
    )
    connack_ms = min((ts for ts in recorder.online_states if ts >= back_ms), default=None)
    outage = {k: at for k, at in arrivals.items() if halted_ms <= k[1] <= back_ms}
    if first_after is None or connack_ms is None or not outage:
        raise RuntimeError("the agent delivered no telemetry of the outage after the broker came back")
    drained_ms = max(outage.values())
    live_until = max(drained_ms, connack_ms + int(2 * period))
    live = [at - ts for (_d, ts), at in arrivals.items() if connack_ms <= ts <= live_until]
    delay = p99(live)
    steady = p99(
        [at - ts for (_d, ts), at in arrivals.items() if halted_ms - STEADY_S * 1000 <= ts < halted_ms - 1000]
    )
    return {
        "outage_s": outage_s,
        "reconnect_s": round((first_after - back_ms) / 1000, 2),
        "reconnect_connack_s": round((connack_ms - back_ms) / 1000, 2),
        "reconnect_measured_as": "broker port open again -> first telemetry of the agent at a subscriber",
        "backlog_drain_s": round((drained_ms - back_ms) / 1000, 2),
        "outage_readings": len(outage),
        "outage_readings_lost": sum(lost.values()) + dropped,
        "outage_seq_gaps": len(missing_seqs(recorder.seqs, last_seq)),
        "live_readings_during_drain": len(live),
        "live_delay_during_drain_ms_p99": None if delay is None else round(delay),
        "live_delay_before_outage_ms_p99": None if steady is None else round(steady),
        "poll_period_ms": round(period),
    }


def _measure_cpu(
    work: Path,
    config_dir: Path,
    broker: MosquittoServer,
    bus_port: str,
    gateway: str,
    seconds: float,
    camera: bool,
) -> dict[str, Any]:
    cameras = _camera_config(work, gateway) if camera else None
    config = _write_config(work, config_dir, gateway, broker.port, bus_port, cameras)
    recorder = Recorder()
    log_path = work / f"{gateway}.log"
    try:
        with _subscriber(broker.port, gateway, recorder), _agent(config, log_path) as agent:
            _wait(_all_reporting(recorder, _wall_ms()), 60, "telemetry from every device", agent)
            if camera:
                _wait(lambda: bool(recorder.cameras), 30, "the camera's health in the state", agent)
            start_ms, cpu0 = _wall_ms(), _cpu_s(agent.pid)
            time.sleep(seconds)
            end_ms, cpu1 = _wall_ms(), _cpu_s(agent.pid)
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited with code {agent.returncode}")
            time.sleep(2 * POLL_S)  # readings taken before end_ms still on their way
    except RuntimeError as err:
        raise RuntimeError(f"{err}\nagent log:\n{_log_tail(log_path)}") from err
    taken = [k for k in recorder.snapshot() if start_ms <= k[1] < end_ms]
    elapsed_s = (end_ms - start_ms) / 1000
    figures = {
        "cpu_s_per_min": round((cpu1 - cpu0) / elapsed_s * 60, 2),
        "readings_per_device_per_s": round(len(taken) / DEVICES / elapsed_s, 3),
    }
    if camera:
        health = recorder.cameras.get("cam-bench", {})
        figures["camera_fps"] = health.get("fps")
    return figures


def cpu_figures(config_dir: Path, seconds: float = 60.0) -> dict[str, Any]:
    """CPU seconds per minute of the agent, bus alone and with one 640×480 camera at 10 fps beside it."""
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-cpu-"))
    try:
        with _bench_bus(work) as (broker, bus_port):
            bus = _measure_cpu(work, config_dir, broker, bus_port, "gw-cpu", seconds, camera=False)
            both = _measure_cpu(work, config_dir, broker, bus_port, "gw-cpu-camera", seconds, camera=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "cpu_seconds": seconds,
        "cpu_devices": DEVICES,
        "cpu_s_per_min": bus["cpu_s_per_min"],
        "readings_per_device_per_s": bus["readings_per_device_per_s"],
        "cpu_s_per_min_with_camera": both["cpu_s_per_min"],
        "readings_per_device_per_s_with_camera": both["readings_per_device_per_s"],
        "camera": f"{CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} at 10 fps (synthetic MJPEG clip, '{CAMERA_SCENARIO}')",
        "camera_fps": both.get("camera_fps"),
    }


def run(config_dir: Path, outage_s: float = 60.0, cpu_seconds: float = 60.0) -> dict[str, Any]:
    """Both parts as one JSON-ready object; `yiwang bench edge` prints them beside the bus figures."""
    return {**recovery_figures(config_dir, outage_s), **cpu_figures(config_dir, cpu_seconds)}
