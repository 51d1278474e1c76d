"""Ingest throughput: publisher → Mosquitto → ingest → InfluxDB, every reading counted back out.

In one run, on this machine: the raw InfluxDB write ceiling (pre-encoded 5,000-line batches of the same
data, four writers — as many as ingest uses — as many points as a batched phase stores, and the body
encoding ingest uses: uncompressed, since the database is on this machine; the gzipped ceiling is
reported beside it); then ``rounds`` times the full path with 100 readings per message followed by the
ceiling again, each round's ratio against the mean of the ceilings around it, the median round reported
(the machine's speed drifts by tens of percent over minutes); then the full path with one reading per
message, and a naive paho + one-write-per-message script on the same workloads. Each phase gets a fresh
database; readings have unique device + timestamp, so the database's count is the number of distinct
readings that arrived (a redelivery overwrites itself).

The publishers run live (QoS 1, a window of un-PUBACKed messages) for ``seconds``; the rate is the
readings counted in the database divided by the time from the first PUBLISH until the last reading
was in the database.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from gzip import compress as gzip_compress
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from broker.mosquitto import MosquittoConfig, mosquitto_binary
from common.db import make_engine
from common.mqtt import SESSION_EXPIRY_S, v5_connect_properties
from contract import Topic, TopicKind, subscription
from ingest.deadletters import DeadLetterStore
from yiwang.bench.mqttload import RawPublisher
from yiwang.bench.stack import cpu_seconds
from yiwang.servers import free_port, influx_query, start_influxd
from yiwang.supervisor import Child, Supervisor, env_with, self_command

GATEWAYS, DEVICES = 10, 100
MEASUREMENT, FIELD = "water.level", "level_cm"
T0 = 1_764_183_600_000
BATCH_LINES = 5000


def _device(gw: int, i: int) -> str:
    return f"wl-{gw:02d}{i:02d}"


def write_config(source: Path, target: Path) -> None:
    shutil.copytree(source / "sensor-types", target / "sensor-types")
    (target / "communities").mkdir(parents=True)
    community = {
        "id": "bench",
        "name": "bench",
        "grids": [{"id": "g-00", "name": "grid 0"}],
        "gateways": [
            {
                "id": f"gw-{gw:02d}",
                "devices": [
                    {"id": _device(gw, i), "type": "water.level@1", "grid": "g-00"} for i in range(DEVICES)
                ],
            }
            for gw in range(GATEWAYS)
        ],
    }
    (target / "communities" / "bench.yaml").write_text(yaml.safe_dump(community), encoding="utf-8")


def payloads(per_msg: int) -> Iterator[tuple[str, bytes, int]]:
    """(topic, payload, readings) forever; every reading has its own device + timestamp."""
    topics = [Topic("bench", f"gw-{gw:02d}", TopicKind.TELEMETRY).path for gw in range(GATEWAYS)]
    seq = 0
    while True:
        seq += 1
        for gw, topic in enumerate(topics):
            # Device i of a gateway reports reading number seq*DEVICES+i at ts T0 + that number (ms).
            start = ((seq - 1) * DEVICES) % (DEVICES * 10_000_000)
            for first in range(0, DEVICES, per_msg):
                n = seq * DEVICES + first
                readings = ",".join(
                    f'{{"device":"{_device(gw, (first + k) % DEVICES)}","ts":{T0 + start + first + k},'
                    f'"values":{{"{FIELD}":{(n + k) % 4000 / 10}}}}}'
                    for k in range(per_msg)
                )
                yield topic, f'{{"seq":{n},"readings":[{readings}]}}'.encode(), per_msg


def _lines(count: int) -> list[str]:
    """The same data as line protocol (what ingest writes), for the ceiling."""
    out = []
    for n in range(count):
        gw, i = (n // DEVICES) % GATEWAYS, n % DEVICES
        out.append(
            f"{MEASUREMENT},community=bench,device={_device(gw, i)},gateway=gw-{gw:02d},grid=g-00 "
            f"{FIELD}={n % 4000 / 10} {T0 + n}"
        )
    return out


def ceiling_bodies(points: int) -> list[bytes]:
    """The ceiling's request bodies: the same data as 5,000-line batches."""
    lines = _lines(points)
    return ["\n".join(lines[i : i + BATCH_LINES]).encode() for i in range(0, len(lines), BATCH_LINES)]


def ceiling(
    url: str, database: str, bodies: Sequence[bytes], writers: int = 4, *, gzip: bool = False
) -> float:
    """Raw write rate of pre-encoded bodies (from :func:`ceiling_bodies`, gzipped if ``gzip``): points
    per second."""
    influx_query(url, f'CREATE DATABASE "{database}"')
    headers = {"Content-Encoding": "gzip"} if gzip else {}
    with httpx.Client(base_url=url, timeout=60) as http, ThreadPoolExecutor(writers) as pool:
        params = {"db": database, "precision": "ms"}

        def post(body: bytes) -> None:
            http.post("/write", params=params, content=body, headers=headers).raise_for_status()

        started = time.perf_counter()
        list(pool.map(post, bodies))
        elapsed = time.perf_counter() - started
    return accepted(url, database) / elapsed


def count(url: str, database: str, http: httpx.Client | None = None) -> int:
    # Constants only, no outside input in the statement.
    statement = f'SELECT count("{FIELD}") FROM "{MEASUREMENT}"'  # noqa: S608
    results = influx_query(url, statement, database, http=http)
    series: Any = results[0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def accepted(url: str, database: str, http: httpx.Client | None = None) -> int:
    """Points the database's shards have accepted so far, rewrites included (cheap: counters)."""
    results = influx_query(url, "SHOW STATS FOR 'shard'", http=http)
    shards: list[dict[str, Any]] = results[0].get("series", [])  # type: ignore[assignment]
    total = 0
    for series in shards:
        if series["tags"]["database"] == database:
            total += series["values"][0][series["columns"].index("writePointsOk")]
    return total


def subscribe_session(port: int, client_id: str, share_group: str | None = None) -> None:
    """Create a consumer's persistent session so the broker queues for it from now on."""
    if share_group:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    done = threading.Event()
    client.on_subscribe = lambda *_a: done.set()
    if share_group:
        client.connect(
            "127.0.0.1", port, clean_start=False, properties=v5_connect_properties(SESSION_EXPIRY_S)
        )
    else:
        client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(subscription(TopicKind.TELEMETRY, share_group=share_group), qos=1)
    done.wait(10)
    client.disconnect()
    client.loop_stop()


def drive(
    port: int,
    url: str,
    database: str,
    messages: list[tuple[str, bytes, int]],
    *,
    drain_timeout: float,
    processes: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Publish ``messages`` (pre-generated: the publisher's JSON work is not on the clock), then wait
    until every reading is counted in the database (or ``drain_timeout``). ``processes`` (name → pids):
    report the CPU each used per stored reading, to show where the time goes."""
    publisher = RawPublisher(port, f"bench-pub-{database}")
    per_msg = messages[0][2]
    cpu_before = _cpu(processes or {})
    started = time.perf_counter()
    try:
        publisher.run(messages, timeout=drain_timeout)
    finally:
        publisher.close()
    published_s = time.perf_counter() - started
    deadline = time.perf_counter() + drain_timeout
    with httpx.Client() as http:
        stored, finished = _wait_until_stored(url, database, publisher.readings, deadline, http)
    elapsed = finished - started
    result: dict[str, Any] = {
        "published_messages": publisher.messages,
        "published_readings": publisher.readings,
        "publish_msgs_per_s": round(publisher.messages / published_s),
        "stored_readings": stored,
        "lost": publisher.readings - stored,
        "readings_per_s": round(stored / elapsed),
        "msgs_per_s": round(stored / per_msg / elapsed),
    }
    if processes:
        # Includes the wait after the last reading (<= 50 ms of polling): idle processes add nothing.
        used = {name: after - cpu_before[name] for name, after in _cpu(processes).items()}
        result["cpu_us_per_reading"] = {name: round(s * 1e6 / max(stored, 1), 2) for name, s in used.items()}
        result["cpu_cores_busy"] = round(sum(used.values()) / elapsed, 2)
    return result


def _wait_until_stored(
    url: str, database: str, expected: int, deadline: float, http: httpx.Client
) -> tuple[int, float]:
    """(distinct readings stored, when the last one arrived), polling until all ``expected`` are
    there or ``deadline``."""
    # Wait on the shards' write counters first: a count() over millions of points costs influxd
    # ~0.3 CPU-s each time, and polling it would take that CPU from the path being measured.
    last, finished = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        written = accepted(url, database, http)
        if written != last:
            last, finished = written, time.perf_counter()
        if written >= expected:
            break
        time.sleep(0.05)
    # The counters include rewrites of redelivered readings: distinct readings are what count() says.
    stored = count(url, database, http)
    while stored < expected and time.perf_counter() < deadline:
        time.sleep(1)
        now_stored = count(url, database, http)
        if now_stored != stored:
            stored, finished = now_stored, time.perf_counter()
    return stored, finished


def _cpu(processes: Mapping[str, Sequence[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in processes.items()}


def naive_consumer(port: int, url: str, database: str, client_id: str) -> Callable[[], None]:
    """What a user would write: paho auto-ack, one /write per message, no validation. Returns stop."""
    http = httpx.Client(base_url=url, timeout=30)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        import json

        topic = msg.topic.split("/")
        doc = json.loads(msg.payload)
        body = "\n".join(
            f"{MEASUREMENT},community={topic[2]},device={r['device']},gateway={topic[3]} "
            f"{FIELD}={float(r['values'][FIELD])} {r['ts']}"
            for r in doc["readings"]
        )
        http.post("/write", params={"db": database, "precision": "ms"}, content=body)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("yiwang/v1/+/+/telemetry", qos=1)
    client.loop_start()

    def stop() -> None:
        client.disconnect()
        client.loop_stop()
        http.close()

    return stop


def _dead_letters(work: Path) -> int:
    db = make_engine(f"sqlite:///{work}/yiwang.db")
    try:
        return DeadLetterStore(db).count()
    finally:
        db.dispose()


def _pids(supervisor: Supervisor) -> list[int]:
    return [child.proc.pid for child in supervisor.children if child.proc is not None]


@dataclass(frozen=True)
class _Stack:
    """The broker and influxd of a run, and what an ingest phase needs to start its processes."""

    port: int
    url: str
    influxd_pid: int
    broker: Supervisor
    env: dict[str, str]
    work: Path
    replicas: int
    drain_timeout: float

    def processes(self, ingest: list[int] | None = None) -> dict[str, list[int]]:
        """The processes whose CPU a phase reports (the bench itself publishes and polls)."""
        found = {"influxd": [self.influxd_pid], "broker": _pids(self.broker), "publisher": [os.getpid()]}
        return found if ingest is None else {**found, "ingest": ingest}


def _ingest_phase(stack: _Stack, database: str, messages: list[tuple[str, bytes, int]]) -> dict[str, Any]:
    """Start ``stack.replicas`` ingest processes writing to a fresh ``database``, drive ``messages``
    through them, stop them; the drive's figures plus the messages they dead-lettered."""
    url = stack.url
    influx_query(url, f'CREATE DATABASE "{database}"')
    # One group per phase: a stopped replica's persistent session stays a member and keeps receiving
    # its share (REFERENCES.md), which would strand the next phase's data.
    group = f"ingest-{database.replace('_', '-')}" if stack.replicas > 1 else None  # [a-z0-9-]
    children = []
    for replica in range(stack.replicas):
        client_id = f"bench-ingest-{database}-{replica}"
        subscribe_session(stack.port, client_id, group)
        child_env = {
            **stack.env,
            "YIWANG_SERIES_URL": f"influxdb://{url.split('//')[1]}/{database}",
            "YIWANG_INGEST_CLIENT_ID": client_id,
            **({"YIWANG_INGEST_SHARE_GROUP": group} if group else {}),
        }
        children.append(Supervisor(child_env, log_path=stack.work / f"ingest-{database}.log"))
        children[-1].start(Child(f"ingest-{replica}", self_command("ingest")))
    time.sleep(3)  # the ingest processes import, connect and resume their sessions
    processes = stack.processes(ingest=[pid for child in children for pid in _pids(child)])
    dead_before = _dead_letters(stack.work)
    try:
        result = drive(
            stack.port, url, database, messages, drain_timeout=stack.drain_timeout, processes=processes
        )
        # Where a reading that is not in the database went, if anywhere: the dead letters.
        result["dead_letters"] = _dead_letters(stack.work) - dead_before
        return result
    finally:
        for child in children:
            child.stop_all()


def _naive_phase(
    stack: _Stack, database: str, messages: list[tuple[str, bytes, int]], cap: float
) -> dict[str, Any]:
    influx_query(stack.url, f'CREATE DATABASE "{database}"')
    stop = naive_consumer(stack.port, stack.url, database, f"bench-naive-{database}")
    try:
        # The naive script may never finish: cap its drain, report what it stored. It runs in the bench
        # process, so its CPU shows as the publisher's.
        naive = drive(
            stack.port, stack.url, database, messages, drain_timeout=cap, processes=stack.processes()
        )
        # Not "lost": it had not finished within the cap (auto-ack loses only on a crash).
        naive["unfinished_after_cap"] = naive.pop("lost")
        return naive
    finally:
        stop()


def _batched_rounds(
    stack: _Stack, messages: list[tuple[str, bytes, int]], bodies: list[bytes], rounds: int
) -> tuple[list[dict[str, Any]], list[float]]:
    """``rounds`` batched phases, each between two ceiling measurements: the machine's speed drifts by
    tens of percent over minutes, so each round's ratio uses the mean of the ceilings around it."""
    ceilings = [ceiling(stack.url, "ceiling_0", bodies)]
    phases = []
    for n in range(rounds):
        phase = _ingest_phase(stack, f"batched_{n}", messages)
        ceilings.append(ceiling(stack.url, f"ceiling_{n + 1}", bodies))
        phase["ceiling_points_per_s"] = round((ceilings[n] + ceilings[n + 1]) / 2)
        phase["ratio"] = round(phase["readings_per_s"] / phase["ceiling_points_per_s"], 3)
        phases.append(phase)
    return phases, ceilings


def seed_registry(database_url: str, config: Path, communities: int) -> int:
    """The bench community in the registry beside ``communities`` × 1,000 others: ingest then checks
    every reading against a district-sized live catalog. Returns the devices registered."""
    from common.db import Base, create_tables, make_engine
    from contract.catalog import load_sensor_types
    from registry.importer import import_communities, read_communities
    from registry.models import TABLES
    from registry.rows import Town
    from yiwang.bench.registry import populate

    db = make_engine(database_url)
    try:
        create_tables(db, Base.metadata, tables=list(TABLES))
        district = populate(db, communities, 1_000)
        types = {p.id for p in load_sensor_types(config)}
        town = Town("bench-town", "bench", "bench", ("bench",))
        import_communities(db, read_communities(config / "communities"), [town], types)
    finally:
        db.dispose()
    return district + GATEWAYS * DEVICES


def _run_phases(
    config_dir: Path,
    work: Path,
    binary: str,
    *,
    seconds: float,
    replicas: int,
    rounds: int,
    registry_communities: int = 0,
) -> dict[str, Any]:
    """The ceilings and the workloads, each on its own database of one influxd."""
    write_config(config_dir, work / "config")
    registered = (
        seed_registry(f"sqlite:///{work}/yiwang.db", work / "config", registry_communities)
        if registry_communities
        else 0
    )
    port = free_port()
    conf = MosquittoConfig(
        host="127.0.0.1", port=port, data_dir=work / "mosquitto", allow_anonymous=True
    ).write(work / "mosquitto.conf")
    env = env_with(
        {
            "YIWANG_MQTT_PORT": str(port),
            "YIWANG_DATABASE_URL": f"sqlite:///{work}/yiwang.db",
            "YIWANG_CONFIG_DIR": str(work / "config"),
            "YIWANG_LOG_LEVEL": "INFO",  # dead letters and spooling are logged at INFO
            "YIWANG_INGEST_SPOOL_DIR": str(work / "spool"),
            "YIWANG_INGEST_METRICS_PORT": "0",
        }
    )
    supervisor = Supervisor(env, log_path=work / "stack.log")
    result: dict[str, Any] = {"area": "ingest", "broker": "mosquitto", "store": "influxdb 1.x"}
    if registered:
        result["registry_devices"] = registered  # the live catalog ingest checked readings against
    try:
        supervisor.start(Child("broker", [binary, "-c", str(conf)], port))
        with start_influxd(base_dir=work) as influxd:
            assert influxd.pid is not None  # started: it answered its ping
            stack = _Stack(port, influxd.url, influxd.pid, supervisor, env, work, replicas, 10 * seconds + 60)
            # Sized to take about ``seconds`` at the rates we aim for (300k readings/s, 12k msgs/s).
            batched = list(itertools.islice(payloads(100), int(3000 * seconds)))
            single = list(itertools.islice(payloads(1), int(12_000 * seconds)))
            # The ceiling writes as many points as a batched phase stores: InfluxDB snapshots its
            # cache every ~25 MB written, so a shorter ceiling would skip work the batched phase pays
            # for. Ingest's store (gzip=auto) writes uncompressed to a database on this machine: so
            # does the ceiling (also the higher of the two here, the stricter yardstick).
            points = 100 * len(batched)
            bodies = ceiling_bodies(points)
            ceiling(stack.url, "warm_up", bodies[:60])  # a fresh server's first writes are slower
            gzipped = [gzip_compress(body, compresslevel=1) for body in bodies]  # as ingest would
            result["ceiling_gzip_points_per_s"] = round(
                ceiling(stack.url, "ceiling_gzip", gzipped, gzip=True)
            )
            phases, ceilings = _batched_rounds(stack, batched, bodies, rounds)
            result["ceiling_runs_points_per_s"] = [round(c) for c in ceilings]
            result["batched_rounds"] = [
                {key: phase[key] for key in ("readings_per_s", "ceiling_points_per_s", "ratio", "lost")}
                for phase in phases
            ]
            # The round with the median ratio (the upper one of an even count) speaks for the run.
            result["batched"] = sorted(phases, key=lambda phase: phase["ratio"])[len(phases) // 2]
            result["single"] = _ingest_phase(stack, "single", single)
            result["naive_batched"] = _naive_phase(stack, "naive_batched", batched, 3 * seconds)
            result["naive_single"] = _naive_phase(stack, "naive_single", single, 3 * seconds)
    finally:
        supervisor.stop_all()
    return result


def run(
    config_dir: Path,
    *,
    seconds: float = 15.0,
    replicas: int = 1,
    rounds: int = 5,
    registry_communities: int = 0,
) -> dict[str, Any]:
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto not found: install Debian's mosquitto package")
    work = Path(tempfile.mkdtemp(prefix="yiwang-bench-ingest-"))
    try:
        result = _run_phases(
            config_dir,
            work,
            binary,
            seconds=seconds,
            replicas=replicas,
            rounds=rounds,
            registry_communities=registry_communities,
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    batched, single = result["batched"], result["single"]
    lost = sum(phase["lost"] for phase in result["batched_rounds"]) + single["lost"]
    if lost:
        # Keep the logs, spools and dead letters of a run that lost readings: they say where.
        result["kept_for_inspection"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    result.update(
        readings_per_s=batched["readings_per_s"],
        msgs_per_s=batched["msgs_per_s"],
        ceiling_points_per_s=batched["ceiling_points_per_s"],
        ratio=batched["ratio"],
        lost=lost,
        single_reading_msgs_per_s=single["msgs_per_s"],
        naive_readings_per_s=result["naive_batched"]["readings_per_s"],
        naive_single_msgs_per_s=result["naive_single"]["msgs_per_s"],
        seconds=seconds,
        replicas=replicas,
        rounds=rounds,
    )
    return result
