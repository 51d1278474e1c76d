"""Soak: half the measured capacity for a long time, with memory, latency and queue depths sampled.

Mosquitto (our broker config), a private influxd, ingest and alerts run as processes. A capacity
phase publishes 100-reading messages as fast as the path takes them (like `bench ingest`'s batched
phase) and measures two rates: readings stored per second (counted in InfluxDB) and readings the
alert service evaluated per second (its heartbeat counters); the capacity is the lower one, since
both services consume every message. Then a paced publisher offers 50 % of that for ``minutes``.
At each sample: the RSS of every process (/proc/<pid>/status), ingest's queue depth (its /metrics),
Mosquitto's stored messages (``$SYS``), the alert service's backlog, and two latencies of a probe
reading published on a gateway of its own: PUBLISH → visible through InfluxDB's /query, and
PUBLISH → evidence of a case (it crosses a threshold rule; a second reading resolves it). At the end
every published reading must be counted in InfluxDB, and the second half of each series (after
warm-up) gets a trend test (yiwang/bench/trend.py).
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine

from broker.mosquitto import MosquittoConfig, mosquitto_binary
from common.db import make_engine
from yiwang.bench.ingest import FIELD, count, drive
from yiwang.bench.soakload import DEVICES, GATEWAYS, PER_MSG, Load, PacedPublisher, Pacer, device_id
from yiwang.bench.soakprobe import (
    PROBE_DEVICE,
    PROBE_GATEWAY,
    Probe,
    SysWatcher,
    alerts_processed,
    metric,
    rss_mb,
)
from yiwang.bench.trend import LATENCY, MEMORY, QUEUE, Criterion, trend
from yiwang.schema import create_all
from yiwang.servers import free_port, start_influxd
from yiwang.supervisor import Child, Supervisor, env_with, self_command

RULE = {"field": FIELD, "op": ">=", "value": 50, "clear": 40}  # the probe's FIRE crosses it, CLEAR resolves
# Offered in the capacity phase: more than the path takes on this machine (it runs ~55-115k/s).
CAPACITY_MSGS_PER_S = 600

# Series in the growth verdict, with their criterion. influxd's RSS is sampled and plotted but not
# judged: it holds the data, and its cache and index grow with every series and point stored.
SERIES: dict[str, Criterion] = {
    "rss_broker_mb": MEMORY,
    "rss_ingest_mb": MEMORY,
    "rss_alerts_mb": MEMORY,
    "store_latency_ms": LATENCY,
    "case_latency_ms": LATENCY,
    "ingest_queue_depth": QUEUE,
    "broker_stored_messages": QUEUE,
    "alerts_lag_messages": QUEUE,
}
INFO_SERIES: dict[str, Criterion] = {"rss_influxd_mb": MEMORY}


def write_config(source: Path, target: Path) -> None:
    """The bench community (10 × 100 water-level sensors and a probe gateway) and one threshold rule
    on every sensor, so the alert service evaluates every reading."""
    shutil.copytree(source / "sensor-types", target / "sensor-types")
    for name in ("categories.yaml", "calendar.yaml"):
        shutil.copy(source / name, target / name)
    (target / "communities").mkdir(parents=True)
    (target / "rules").mkdir()
    gateways = [
        {
            "id": f"gw-{gw:02d}",
            "devices": [
                {"id": device_id(gw, i), "type": "water.level@1", "grid": "g-00"} for i in range(DEVICES)
            ],
        }
        for gw in range(GATEWAYS)
    ]
    gateways.append(
        {"id": PROBE_GATEWAY, "devices": [{"id": PROBE_DEVICE, "type": "water.level@1", "grid": "g-00"}]}
    )
    community = {
        "id": "bench",
        "name": "bench",
        "grids": [{"id": "g-00", "name": "grid 0"}],
        "gateways": gateways,
    }
    (target / "communities" / "bench.yaml").write_text(yaml.safe_dump(community), encoding="utf-8")
    rule = {
        "id": "soak-flooding",
        "version": 1,
        "scope": {"type": "water.level@1"},
        "severity": "critical",
        "category": "flooding",
        "threshold": RULE,
        # The probe fires and resolves at every sample by design: no flap damping for it.
        "flapping": {"window_s": 1, "max_changes": 1_000_000},
    }
    (target / "rules" / "soak.yaml").write_text(yaml.safe_dump({"rules": [rule]}), encoding="utf-8")
    # The alert service needs an organisation that owns the community; nobody works the cases.
    organisation = {
        "district": {"id": "bench", "name": "bench"},
        "towns": [{"id": "bench-town", "name": "bench town", "communities": ["bench"]}],
    }
    (target / "organisation.yaml").write_text(yaml.safe_dump(organisation), encoding="utf-8")


def judge(samples: list[dict[str, Any]], soak_s: float) -> tuple[dict[str, dict[str, float | bool]], bool]:
    """Trend per series over the second half of the soak; growth if any judged series grows."""
    half = [s for s in samples if s["t_s"] >= soak_s / 2]
    result: dict[str, dict[str, float | bool]] = {}
    growth = False
    for name, criterion in {**SERIES, **INFO_SERIES}.items():
        points = [(s["t_s"], s[name]) for s in half if s.get(name) is not None]
        if len(points) < 3:
            continue
        found = trend([p[0] for p in points], [p[1] for p in points], criterion)
        result[name] = found.as_dict()
        growth = growth or (found.growth and name in SERIES)
    return result, growth


def _wait_until(check: Any, timeout: float, what: str, children: Iterable[Child] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for child in children:
            if child.proc is not None and child.proc.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.proc.returncode} while waiting for {what}"
                )
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout:.0f}s")
        time.sleep(0.2)


def run(config_dir: Path, *, minutes: float = 30.0, plot_dir: Path | None = None) -> dict[str, Any]:
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto not found: install Debian's mosquitto package")
    soak_s = minutes * 60
    interval = min(10.0, max(2.0, soak_s / 90))
    capacity_s = min(40.0, max(5.0, minutes * 1.5))
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-soak-") as tmp:
        work = Path(tmp)
        write_config(config_dir, work / "config")
        port, metrics_port = free_port(), free_port()
        conf = work / "mosquitto.conf"
        mosquitto = MosquittoConfig(
            host="127.0.0.1", port=port, data_dir=work / "mosquitto", allow_anonymous=True
        )
        conf.parent.mkdir(parents=True, exist_ok=True)
        mosquitto.data_dir.mkdir(parents=True, exist_ok=True)
        # The shipped config plus a short $SYS interval, so the stored-messages count is fresh per sample.
        conf.write_text(mosquitto.render() + "sys_interval 2\n", encoding="utf-8")
        database_url = f"sqlite:///{work}/yiwang.db"
        create_all(database_url)
        db = make_engine(database_url)
        supervisor = Supervisor(
            env_with(
                {
                    "YIWANG_MQTT_PORT": str(port),
                    "YIWANG_DATABASE_URL": database_url,
                    "YIWANG_CONFIG_DIR": str(work / "config"),
                    "YIWANG_LOG_LEVEL": "WARNING",
                    "YIWANG_INGEST_SPOOL_DIR": str(work / "spool"),
                    "YIWANG_INGEST_METRICS_PORT": str(metrics_port),
                    "YIWANG_INGEST_CLIENT_ID": f"soak-ingest-{os.getpid()}",
                    "YIWANG_ALERTS_CLIENT_ID": f"soak-alerts-{os.getpid()}",
                }
            ),
            log_path=work / "stack.log",
        )
        broker = Child("broker", [binary, "-c", str(conf)], port)
        try:
            supervisor.start(broker)
            with start_influxd("soak", base_dir=work) as influxd:
                url = influxd.url
                series = {"YIWANG_SERIES_URL": f"influxdb://{url.split('//')[1]}/soak"}
                ingest = Child("ingest", self_command("ingest"), env=series)
                alerts = Child("alerts", self_command("alerts"), env=series)
                supervisor.start(ingest)
                supervisor.start(alerts)
                result = _soak(
                    port,
                    url,
                    metrics_port,
                    db,
                    soak_s,
                    interval,
                    capacity_s,
                    pids={
                        "broker": broker.proc.pid if broker.proc else None,
                        "ingest": ingest.proc.pid if ingest.proc else None,
                        "alerts": alerts.proc.pid if alerts.proc else None,
                        "influxd": influxd.pid,
                    },
                    children=[broker, ingest, alerts],
                )
        except RuntimeError as err:
            # The temp dir goes away with the run: keep the services' last words in the error.
            tail = (
                (work / "stack.log").read_text(errors="replace")[-3000:]
                if (work / "stack.log").exists()
                else ""
            )
            raise RuntimeError(f"{err}\n--- stack.log (tail) ---\n{tail}") from err
        finally:
            supervisor.stop_all()
            db.dispose()
    result["minutes"] = minutes
    if plot_dir is not None:
        from yiwang.bench.soakplot import plot

        paths = plot(result["samples"], plot_dir, rate=result["rate_readings_per_s"], minutes=minutes)
        result["plots"] = [str(p) for p in paths]
    return result


def _soak(
    port: int,
    url: str,
    metrics_port: int,
    db: Engine,
    soak_s: float,
    interval: float,
    capacity_s: float,
    pids: dict[str, int | None],
    children: list[Child],
) -> dict[str, Any]:
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    http = httpx.Client(timeout=10)
    sys_watch = SysWatcher(port)
    probe = Probe(port, url, "soak", db)
    load = Load(int(time.time() * 1000) - 86_400_000)
    try:
        _wait_until(lambda: _ok(http, metrics_url), 60, "ingest /metrics", children)
        _wait_until(lambda: alerts_processed(db)[1] > 0, 60, "the alert service's heartbeat", children)
        # The path is up once a probe reading went all the way through both services.
        store_ms, case_ms = probe.measure()
        if store_ms is None or case_ms is None:
            raise RuntimeError("the probe reading did not reach InfluxDB and a case within 30 s")

        # Capacity: as fast as the path takes it, counted in InfluxDB (ingest) and in the alert
        # service's heartbeat (it must keep up too).
        processed_before, _ = alerts_processed(db)
        messages = list(itertools.islice(load, int(CAPACITY_MSGS_PER_S * capacity_s)))
        started_wall = time.time()
        capacity = drive(port, url, "soak", messages, drain_timeout=10 * capacity_s + 60)
        del messages
        published_msgs = capacity["published_messages"]
        deadline = time.monotonic() + max(60.0, 5 * capacity_s)
        processed, seen_at = alerts_processed(db)
        while processed - processed_before < published_msgs and time.monotonic() < deadline:
            time.sleep(0.5)
            processed, seen_at = alerts_processed(db)
        alerts_rate = (processed - processed_before) * PER_MSG / max(1e-3, seen_at - started_wall)
        ingest_rate = float(capacity["readings_per_s"])
        capacity_rate = min(ingest_rate, alerts_rate)
        rate = capacity_rate / 2
        msgs_per_s = rate / PER_MSG

        publisher = PacedPublisher(port, f"soak-pub-{os.getpid()}")
        pacer = Pacer(publisher, load, msgs_per_s)
        samples: list[dict[str, Any]] = []
        base_msgs = capacity["published_messages"]
        started = time.perf_counter()
        pacer.start()
        try:
            next_at = 0.0
            while next_at <= soak_s:
                time.sleep(max(0.0, started + next_at - time.perf_counter()))
                if pacer.error is not None:
                    raise RuntimeError(f"the paced publisher failed: {pacer.error!r}") from pacer.error
                samples.append(
                    _sample(
                        started,
                        http,
                        metrics_url,
                        sys_watch,
                        db,
                        probe,
                        publisher,
                        pids,
                        base_msgs,
                        msgs_per_s,
                    )
                )
                # A slow sample (a probe waiting up to 30 s) skips the slots it overran.
                next_at = max(
                    next_at + interval, math.ceil((time.perf_counter() - started) / interval) * interval
                )
        finally:
            pacer.halt.set()
            pacer.join(30)
        publisher.drain(120)
        publisher.close()
        soak_elapsed = time.perf_counter() - started

        published = capacity["published_readings"] + publisher.readings + probe.readings
        deadline = time.monotonic() + 300
        stored = count(url, "soak")
        while stored < published and time.monotonic() < deadline:
            time.sleep(1)
            stored = count(url, "soak")
        trends, growth = judge(samples, soak_s)
        return {
            "area": "soak",
            "broker": "mosquitto",
            "store": "influxdb 1.x",
            "capacity_readings_per_s": round(capacity_rate),
            "capacity_ingest_readings_per_s": round(ingest_rate),
            "capacity_alerts_readings_per_s": round(alerts_rate),
            "rate_readings_per_s": round(rate),
            "achieved_readings_per_s": round(publisher.readings / soak_elapsed),
            "interval_s": round(interval, 2),
            "published": published,
            "stored": stored,
            "lost": published - stored,
            "probe_timeouts": probe.timeouts,
            "samples": samples,
            "trend": trends,
            "growth_trend": growth,
            "growing_series": sorted(k for k, v in trends.items() if v["growth"] and k in SERIES),
        }
    finally:
        probe.close()
        sys_watch.close()
        http.close()


def _ok(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _sample(
    started: float,
    http: httpx.Client,
    metrics_url: str,
    sys_watch: SysWatcher,
    db: Engine,
    probe: Probe,
    publisher: PacedPublisher,
    pids: dict[str, int | None],
    base_msgs: int,
    msgs_per_s: float,
) -> dict[str, Any]:
    sample: dict[str, Any] = {"t_s": round(time.perf_counter() - started, 2)}
    for name, pid in pids.items():
        rss = rss_mb(pid)
        sample[f"rss_{name}_mb"] = round(rss, 2) if rss is not None else None
    try:
        text = http.get(metrics_url).text
    except httpx.HTTPError:
        text = ""
    sample["ingest_queue_depth"] = metric(text, "yiwang_ingest_queue_depth")
    sample["ingest_deferred_depth"] = metric(text, "yiwang_ingest_deferred_depth")
    sample["ingest_spool_points"] = metric(text, "yiwang_ingest_spool_points")
    sample["broker_stored_messages"] = sys_watch.stored
    # The heartbeat is up to 5 s old: subtract what was published since it was written.
    processed, seen_at = alerts_processed(db)
    published = base_msgs + publisher.acked + probe.readings
    sample["alerts_lag_messages"] = round(
        published - processed - msgs_per_s * max(0.0, time.time() - seen_at)
    )
    store_ms, case_ms = probe.measure()
    sample["store_latency_ms"] = round(store_ms, 1) if store_ms is not None else None
    sample["case_latency_ms"] = round(case_ms, 1) if case_ms is not None else None
    return sample
