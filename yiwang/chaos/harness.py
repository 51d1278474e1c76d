"""The whole stack as processes on free ports in a temp dir: Mosquitto, influxd, PostgreSQL, ingest,
alerts, and simulated gateways (edge Spool + GatewayPublisher) publishing through a TCP proxy.

Every part can be killed, paused or cut and brought back by a scenario (yiwang/chaos/scenarios.py).
The gateways' values are planned in advance, so the cases the run must open are known.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract import Topic, TopicKind
from contract.catalog import Catalog, load_catalog
from contract.profiles import Scalar, SensorTypeProfile
from yiwang.chaos.gateway import Anomaly, Plan
from yiwang.chaos.power import PowerCut, cut_power
from yiwang.chaos.processes import wait_until
from yiwang.chaos.proxy import TcpProxy
from yiwang.schema import create_all
from yiwang.servers import (
    HOST,
    InfluxServer,
    MosquittoServer,
    PostgresServer,
    Process,
    start_influxd,
    start_mosquitto,
    start_postgres,
)
from yiwang.supervisor import env_with, self_command

COMMUNITY = "zhuganxiang"
TICK_S = 0.5
INFLUX_DB = "chaos"
POISON_MARK = "chaos-poison"
# Values that keep every rule quiet; the plan's anomalies are the only alarms.
_QUIET: dict[str, Scalar] = {"registered": True, "smoke": False, "open": False, "level_cm": 3.0}
FLOOD_LEVEL_CM = 72.0


def quiet_values(profile: SensorTypeProfile) -> dict[str, Scalar]:
    values: dict[str, Scalar] = {}
    for name, spec in profile.fields.items():
        if name in _QUIET:
            values[name] = _QUIET[name]
        elif spec.type == "bool":
            values[name] = False
        elif spec.type == "string":
            values[name] = "ok"
        else:
            low = spec.min if spec.min is not None else 0.0
            high = spec.max if spec.max is not None else low + 100.0
            number = min(high, max(low, 1.0)) if low <= 1.0 else (low + high) / 2
            values[name] = round(number) if spec.type == "int" else round(number, 2)
    return values


@dataclass
class GatewayRun:
    plan: Plan
    proc: Process
    plan_path: Path

    def drained(self) -> bool:
        log = self.plan.log
        return log.exists() and log.read_text(encoding="utf-8").endswith("drained\n")


@dataclass
class Harness:
    workdir: Path
    catalog: Catalog
    config_dir: Path
    postgres: PostgresServer
    influx: InfluxServer
    influx_url: str
    broker: MosquittoServer
    mqtt_port: int
    proxy: TcpProxy
    ingest: Process
    alerts: Process
    gateways: dict[str, GatewayRun] = field(default_factory=dict)
    # Gateways with a link of their own (cut one, the others stay up); the rest share ``proxy``.
    links: dict[str, TcpProxy] = field(default_factory=dict)
    poison_sent: int = 0
    started: float = field(default_factory=time.monotonic)
    power_cuts: dict[str, list[PowerCut]] = field(default_factory=dict)
    # The proof that the fault landed (a backlog outstanding at a kill, a link noticed dead, ...),
    # set by the scenario; a run whose fault did not land fails instead of passing vacuously.
    fault_landed: bool = True
    fault: dict[str, Any] = field(default_factory=dict)

    # -- services -----------------------------------------------------------------------------------

    def restart_service(self, service: Process) -> None:
        """Start ingest or alerts again and wait until it has subscribed."""
        before = _subscribed(service.log_path)
        service.start()
        wait_until(lambda: _subscribed(service.log_path) > before, 60, f"{service.name} to subscribe")

    def kill_gateway(self, gateway: str) -> None:
        self.gateways[gateway].proc.halt(kill=True)

    def start_gateway(self, gateway: str) -> None:
        self.gateways[gateway].proc.start()

    def cut_power(self, gateway: str) -> PowerCut:
        """SIGKILL the gateway and leave its spool as it was at its last fsync (not started again)."""
        run = self.gateways[gateway]
        run.proc.halt(kill=True)
        cut = cut_power(run.plan.spool, last_logged_tick(run.plan.log))
        self.power_cuts.setdefault(gateway, []).append(cut)
        return cut

    def plan_anomaly(self, gateway: str, anomaly: Anomaly) -> None:
        """Add ``anomaly`` to a gateway's plan; a gateway reads its plan when it starts."""
        run = self.gateways[gateway]
        run.plan = replace(run.plan, anomalies=[*run.plan.anomalies, anomaly])
        run.plan_path.write_text(run.plan.to_json(), encoding="utf-8")

    def stop_stack(self) -> None:
        """A planned stop of everything, in the reverse of the start order (as `yiwang up` stops):
        the gateways cleanly (each says so on its retained state), then the services, then the servers."""
        for run in self.gateways.values():
            run.proc.halt()
        for service in (self.alerts, self.ingest):
            service.halt()
        self.broker.halt()
        self.influx.halt()
        self.postgres.halt()

    def start_stack(self) -> None:
        self.postgres.start()
        self.influx.start()
        self.broker.start()
        for service in (self.ingest, self.alerts):
            self.restart_service(service)
        for run in self.gateways.values():
            run.proc.start()

    def tick_at(self, seconds_from_now: float) -> int:
        """The tick the gateways produce ``seconds_from_now`` later (they started with the harness)."""
        return int((time.monotonic() - self.started + seconds_from_now) / TICK_S)

    # -- poison -------------------------------------------------------------------------------------

    @contextmanager
    def poison(self, per_s: float = 1.0) -> Iterator[None]:
        """Publish malformed telemetry on a gateway's topic at ``per_s`` while the block runs."""
        stop = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="chaos-poison")
        client.connect(HOST, self.mqtt_port)
        client.loop_start()
        topic = Topic(COMMUNITY, "gw-01", TopicKind.TELEMETRY).path

        def bad(n: int) -> bytes:
            # Each one unique (n), so a dead letter written twice for one message is seen as such.
            mark = f"{POISON_MARK}-{n}"
            return [
                f"{{{mark} not json".encode(),
                json.dumps({"seq": 1, "readings": [{"device": mark, "ts": 1, "values": {"x": 1}}]}).encode(),
                f'{{"seq": "{mark}", "readings": []}}'.encode(),
            ][n % 3]

        def loop() -> None:
            while not stop.wait(1.0 / per_s):
                info = client.publish(topic, bad(self.poison_sent), qos=1)
                info.wait_for_publish(30)
                self.poison_sent += 1

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(60)
            client.disconnect()
            client.loop_stop()


def last_logged_tick(log: Path) -> int:
    """The last tick of any line the gateway logged (an event's line precedes its tick's readings)."""
    ticks = [
        int(line.split()[1])
        for line in log.read_text(encoding="utf-8").splitlines()
        if line[:2] in ("T ", "E ")
    ]
    return max(ticks, default=-1)


def _subscribed(log_path: Path) -> int:
    if not log_path.exists():
        return 0
    return log_path.read_text(encoding="utf-8", errors="replace").count(" subscribed to ")


def _plan_gateways(
    h: Harness,
    skew_ms: dict[str, int],
    events: list[tuple[str, str, str, float]],
    floods: dict[str, str],
    flood_at_s: float,
    extra: dict[str, list[Anomaly]],
) -> None:
    community = h.catalog.communities[COMMUNITY]
    for gw in community.gateways:
        devices = {
            d.id: quiet_values(h.catalog.profiles[d.type])
            for d in gw.devices
            if h.catalog.profiles[d.type].fields
        }
        first = int(flood_at_s / TICK_S)
        anomalies = (
            [Anomaly(floods[gw.id], "level_cm", FLOOD_LEVEL_CM, first, first + int(12 / TICK_S))]
            if gw.id in floods
            else []
        ) + extra.get(gw.id, [])
        gdir = h.workdir / "gateways" / gw.id
        gdir.mkdir(parents=True)
        plan = Plan(
            community=COMMUNITY,
            gateway=gw.id,
            port=h.links[gw.id].port if gw.id in h.links else h.proxy.port,
            spool=gdir / "spool.sqlite3",
            log=gdir / "produced.log",
            stop_file=gdir / "stop",
            tick_s=TICK_S,
            skew_ms=skew_ms.get(gw.id, 0),
            devices=devices,
            anomalies=anomalies,
            events=[(int(at / TICK_S), dev, kind) for g, dev, kind, at in events if g == gw.id],
        )
        plan_path = gdir / "plan.json"
        plan_path.write_text(plan.to_json(), encoding="utf-8")
        argv = [sys.executable, "-m", "yiwang.chaos.gateway", str(plan_path)]
        h.gateways[gw.id] = GatewayRun(plan, Process(gw.id, argv, gdir / "gateway.log"), plan_path)


@contextmanager
def running_harness(
    config_dir: Path,
    *,
    skew_ms: dict[str, int] | None = None,
    events: list[tuple[str, str, str, float]] | None = None,
    floods: dict[str, str] | None = None,
    flood_at_s: float = 10.0,
    anomalies: dict[str, list[Anomaly]] | None = None,
    own_links: tuple[str, ...] = (),
    keep: bool = False,
) -> Iterator[Harness]:
    """The stack, with gateways producing from the moment this yields; torn down afterwards.

    ``anomalies``: per gateway, planned values beyond the floods (ticks count from this yield).
    ``own_links``: gateways that reach the broker through a proxy of their own (``h.links``).
    """
    workdir = Path(tempfile.mkdtemp(prefix="yiwang-chaos-"))
    catalog = load_catalog(config_dir)
    postgres: PostgresServer | None = None
    servers: list[InfluxServer | MosquittoServer] = []
    started: list[Process] = []
    proxy: TcpProxy | None = None
    h: Harness | None = None
    try:
        # Its own temp dir, not workdir: as root, the postgres user must be able to reach the cluster.
        postgres = start_postgres("chaos", fsync=True)  # fsync: a killed server must keep what it acked
        create_all(postgres.url)
        # Restarts after a kill replay the WAL or the persistence file: allow as long as the services.
        influx = start_influxd(INFLUX_DB, base_dir=workdir, timeout=60)
        servers.append(influx)
        influx_url = influx.url
        broker = start_mosquitto(base_dir=workdir, timeout=60)
        servers.append(broker)
        mqtt_port = broker.port
        proxy = TcpProxy(mqtt_port)
        env = env_with(
            {
                "YIWANG_MQTT_PORT": str(mqtt_port),
                "YIWANG_DATABASE_URL": postgres.url,
                "YIWANG_SERIES_URL": f"influxdb://{influx_url.removeprefix('http://')}/{INFLUX_DB}",
                "YIWANG_CONFIG_DIR": str(config_dir.resolve()),
                "YIWANG_LOG_LEVEL": "INFO",
                "YIWANG_INGEST_SPOOL_DIR": str(workdir / "ingest-spool"),
                "YIWANG_INGEST_METRICS_PORT": "0",
            }
        )
        ingest = Process("ingest", self_command("ingest"), workdir / "ingest.log", env=env)
        alerts = Process("alerts", self_command("alerts"), workdir / "alerts.log", env=env)
        h = Harness(
            workdir,
            catalog,
            config_dir,
            postgres,
            influx,
            influx_url,
            broker,
            mqtt_port,
            proxy,
            ingest,
            alerts,
        )
        for service in (ingest, alerts):
            h.restart_service(service)
            started.append(service)
        h.links = {gw: TcpProxy(mqtt_port) for gw in own_links}
        _plan_gateways(h, skew_ms or {}, events or [], floods or {}, flood_at_s, anomalies or {})
        h.started = time.monotonic()
        for run in h.gateways.values():
            run.proc.start()
            started.append(run.proc)
        yield h
    finally:
        for proc in reversed(started):
            # A gateway's clean stop would publish the offline state: the run is over anyway.
            proc.halt(kill=proc.name.startswith("gw-"))
        if proxy is not None:
            proxy.cut()
        for link in h.links.values() if h is not None else ():
            link.cut()
        for server in reversed(servers):
            server.stop(keep=keep)
        if postgres is not None:
            postgres.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
