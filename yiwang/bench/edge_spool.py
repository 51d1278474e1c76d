"""`yiwang bench edge`, spool part: write rate, bytes per reading, drain rate to Mosquitto, memory.

Runs in a child process (``python -m yiwang.bench.edge_spool PORT``) so its peak RSS is the spool's
and publisher's alone, not the bench harness's:

- ``spool_write_per_s``: readings/s appended as 100-sensor poll cycles (100 readings of two fields
  per append, WAL, fsync at least once a second); ceiling ``spool_encode_per_s``: the same cycles
  only serialised and compressed (the spool's own codec), no SQLite.
- ``spool_write_fsync_each_per_s``: the same with an fsync per append (``sync_interval_s=0``).
- ``bytes_per_reading``: spool file size (after a WAL checkpoint) ÷ readings held; × 8.64 M readings
  (24 h × 100 sensors × 1/s) gives ``day_offline_gb``.
- ``drain_per_s``: the whole backlog published at QoS 1 to a local Mosquitto through
  ``GatewayPublisher`` until every message was acknowledged and deleted; ceiling
  ``drain_ceiling_per_s``: the same number of same-sized messages from a bare paho client, QoS 1.
- ``spool_rss_mb``: the child's peak RSS (VmHWM) while the spool held ``spool_records`` readings
  and drained them.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.messages import Reading
from contract.profiles import Scalar
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Spool
from edge.spool_codec import encode

SENSORS = 100
DAY_READINGS = 24 * 3600 * SENSORS
T0 = 1_764_183_600_000


def _cycles(count: int, seed: int = 7) -> list[list[Reading]]:
    rng = random.Random(seed)
    temps = [20 + rng.random() * 5 for _ in range(SENSORS)]
    cycles = []
    for second in range(count):
        cycle = []
        for s in range(SENSORS):
            temps[s] += rng.uniform(-0.05, 0.05)
            values: dict[str, Scalar] = {
                "temperature": round(temps[s], 1),
                "humidity": round(50 + rng.random() * 10, 1),
            }
            cycle.append(Reading(device=f"th-{s:04d}", ts=T0 + second * 1000, values=values))
        cycles.append(cycle)
    return cycles


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _ceiling_drain(port: int, payload: bytes, messages: int) -> float:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling")
    client.max_inflight_messages_set(20)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        started = time.perf_counter()
        infos = [client.publish("bench/ceiling", payload, qos=1) for _ in range(messages)]
        for info in infos:
            info.wait_for_publish(60)
        return time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()


def measure(port: int, readings: int) -> dict[str, Any]:
    # 20 distinct cycles, reused: holding a million Reading objects would measure the bench, not the spool.
    cycles = _cycles(20)
    started = time.perf_counter()
    for _ in range(50):  # 100,000 readings: long enough to be a rate, not a blip
        for cycle in cycles:
            encode(Reading, cycle, 500)
    encode_per_s = 50 * len(cycles) * SENSORS / (time.perf_counter() - started)

    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-spool-"))
    # The same with an fsync per append (sync_interval_s=0), on 200,000 readings.
    with Spool(work / "fsync-each.sqlite3", sync_interval_s=0) as strict:
        started = time.perf_counter()
        for i in range(2000):
            strict.append_readings(cycles[i % len(cycles)])
        fsync_each_per_s = 2000 * SENSORS / (time.perf_counter() - started)
    for p in work.iterdir():
        p.unlink()
    path = work / "gw.sqlite3"
    clock = [T0]
    with Spool(path, max_bytes=2 * 1024**3, max_age_s=None, clock=lambda: clock[0]) as spool:
        appended = 0
        started = time.perf_counter()
        while appended < readings:
            appended += spool.append_readings(cycles[(appended // SENSORS) % len(cycles)])
        write_s = time.perf_counter() - started
        spool.checkpoint()  # measure the settled file, not a WAL waiting to be folded in
        file_bytes = sum(p.stat().st_size for p in work.iterdir())
        rss_full_kb = _status_kb("VmRSS")

        clock[0] += 3_600_000  # an hour later: all of it is backlog
        options = MqttOptions(port=port)  # the agent's defaults
        publisher = GatewayPublisher("bench", "gw-spool", spool, [], options, clock=lambda: clock[0])
        done = threading.Event()
        publisher.start()
        try:
            deadline = time.monotonic() + 10
            while not publisher.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.perf_counter()
            while spool.depth() > 0 and not done.wait(0.01):
                publisher.pump()
            drain_s = time.perf_counter() - started
            published = publisher.published
            peak_kb = _status_kb("VmHWM")  # before the ceiling run, which is not the spool's
        finally:
            publisher.stop()
    payload = json.dumps({"seq": 1, "readings": [r.model_dump() for c in cycles[:5] for r in c]}).encode()
    ceiling_s = _ceiling_drain(port, payload, published)
    for p in work.iterdir():
        p.unlink()
    work.rmdir()
    return {
        "spool_write_per_s": round(readings / write_s),
        "spool_encode_per_s": round(encode_per_s),
        "spool_write_fsync_each_per_s": round(fsync_each_per_s),
        "spool_readings_per_append": SENSORS,
        "bytes_per_reading": round(file_bytes / readings, 1),
        "day_offline_gb": round(file_bytes / readings * DAY_READINGS / 1e9, 3),
        "drain_per_s": round(readings / drain_s),
        "drain_messages": published,
        "drain_ceiling_per_s": round(published * 500 / ceiling_s),
        "spool_records": readings,
        "spool_rss_full_mb": round(rss_full_kb / 1024, 1),
        "spool_rss_mb": round(peak_kb / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000)))
