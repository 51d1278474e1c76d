"""Scale-out on one machine: 2 ingest replicas on a shared subscription and 2 alert workers partitioned
by community, one of each SIGKILLed mid-stream and restarted as a supervisor would (same client id,
replica and partition). Nothing may be lost and no alert may open or join a case twice.

Real Mosquitto, influxd and PostgreSQL; every service is its own ``python -m yiwang`` process. Four
gateways (two per community) publish a reading for each of their devices every 0.2 s (~400 readings/s)
for 25 s. Scripted breaches on distinct devices, each in its own grid, must open exactly one case
each: floods (no ``for``) and hot rooms (``for: 6 s``), spread so that some fire before the kills,
one is pending at the moment its worker dies, some arrive while it is down and some after. The
alert workers keep the production checkpoint interval (30 s), so the killed one restarts with no
checkpoint at all and rebuilds its state from the stream and the case store.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.models import Alert, AlertHistory
from cases.models import Case, CaseEvent, Evidence
from common.db import make_engine
from ingest.deadletters import DeadLetterStore
from tests.platform import CONFIG_DIR, REPO, Service, wait_for
from yiwang.servers import InfluxDatabase, MosquittoServer, influx_query, start_mosquitto, unique_name

COMMUNITIES = ("scale-a", "scale-b")
KILLED = "scale-a"  # the alert worker that gets killed; scale-b's worker is the control
TICK_S = 0.2
TICKS = 125  # 25 s of stream
FILLERS = 14  # well-behaved probes per gateway, for volume
FOR_S = 6
# Breach windows in seconds from the first tick (end None: until the stream's last second).
FLOODS = {
    "wl-01": (2.0, 5.0),
    "wl-02": (4.5, 7.5),
    "wl-03": (7.0, 10.0),
    "wl-04": (10.5, 13.5),
    "wl-05": (12.0, None),
    "wl-06": (15.0, None),
    "wl-07": (18.0, None),
    "wl-08": (21.0, None),
}
HOT = {"th-01": 0.5, "th-02": 8.0, "th-03": 11.5, "th-04": 16.0}
CALM_FROM_S = 24.0  # everything back to normal: the resolutions are the "worker caught up" marker
INGEST_KILL_AT_S, DOWN_S = 6.0, 4.0
HOT_ROOM_RULE = {
    "rules": [
        {
            "id": "hot-room",
            "version": 1,
            "description": "A plant room stays at 50 °C or more (scale-out test).",
            "scope": {"type": "env.th@1"},
            "threshold": {"field": "temperature", "op": ">=", "value": 50, "clear": 45},
            "for_s": FOR_S,
            "severity": "critical",
            "category": "fire_smoke",
        }
    ]
}
# Mosquitto as broker/ ships it for ingest: a large in-flight window, saved every second.
BROKER_EXTRA = "max_inflight_messages 20000\nautosave_interval 1\n"


def gateway_devices(gateway: int) -> list[dict[str, str]]:
    """Gateway 1 carries wl-01..04 and th-01..02, gateway 2 the rest; each alarm device has its own grid,
    so every expected case is distinct (same grid + category would join one case)."""
    floods = [f"wl-{i:02d}" for i in range(4 * gateway - 3, 4 * gateway + 1)]
    hot = [f"th-{i:02d}" for i in range(2 * gateway - 1, 2 * gateway + 1)]
    fillers = [f"th-{gateway}{i:02d}" for i in range(FILLERS)]
    return (
        [{"id": d, "type": "water.level@1", "grid": f"g-{d[3:]}"} for d in floods]
        + [{"id": d, "type": "env.th@1", "grid": f"g-{d[3:]}"} for d in hot]
        + [{"id": d, "type": "env.th@1", "grid": "g-00"} for d in fillers]
    )


def write_config(target: Path) -> None:
    """The shipped configuration plus two generated communities and the hot-room rule."""
    shutil.copytree(CONFIG_DIR, target)
    for community in COMMUNITIES:
        doc = {
            "id": community,
            "name": f"scale-out test {community}",
            "grids": [{"id": f"g-{i:02d}", "name": f"grid {i}"} for i in range(9)],
            "gateways": [{"id": f"gw-{g}", "devices": gateway_devices(g)} for g in (1, 2)],
        }
        (target / "communities" / f"{community}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    (target / "rules" / "scale-out-test.yaml").write_text(yaml.safe_dump(HOT_ROOM_RULE), encoding="utf-8")


def reading(device: str, tick: int, ts: int) -> dict[str, Any]:
    """The scripted value of a device at a tick: varied, so "stored exactly as sent" means something."""
    t = tick * TICK_S
    wobble = tick % 7 / 10
    if device.startswith("wl-"):
        start, end = FLOODS[device]
        high = start <= t < (end if end is not None else CALM_FROM_S)
        return {"device": device, "ts": ts, "values": {"level_cm": (70 if high else 10) + wobble}}
    hot = device in HOT and HOT[device] <= t < CALM_FROM_S
    values = {"temperature": (55 if hot else 21) + wobble, "humidity": 40 + wobble}
    return {"device": device, "ts": ts, "values": values}


@dataclass
class Gateways:
    """Plays the four gateways: one MQTT client each, QoS 1, per-gateway ``seq``, on a fixed schedule."""

    port: int
    sent: dict[tuple[str, str, int], dict[str, float]] = field(default_factory=dict)
    tick: int = 0
    started: float = 0.0
    error: BaseException | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc

    def _run(self) -> None:
        clients: dict[tuple[str, int], mqtt.Client] = {}
        infos: list[mqtt.MQTTMessageInfo] = []
        for community in COMMUNITIES:
            for gw in (1, 2):
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("gw"))
                client.connect("127.0.0.1", self.port)
                client.loop_start()
                clients[(community, gw)] = client
        try:
            t0_ms = int(time.time() * 1000)
            self.started = time.monotonic()
            for tick in range(TICKS):
                time.sleep(max(0.0, self.started + tick * TICK_S - time.monotonic()))
                ts = t0_ms + int(tick * TICK_S * 1000)
                for (community, gw), client in clients.items():
                    readings = [reading(d["id"], tick, ts) for d in gateway_devices(gw)]
                    payload = json.dumps({"seq": tick + 1, "readings": readings})
                    infos.append(client.publish(f"yiwang/v1/{community}/gw-{gw}/telemetry", payload, qos=1))
                    for r in readings:
                        self.sent[(community, r["device"], r["ts"])] = r["values"]
                self.tick = tick + 1
            for info in infos:
                info.wait_for_publish(30)  # PUBACKed: the broker owns every reading from here on
                if not info.is_published():
                    raise AssertionError(f"message {info.mid} not acknowledged by the broker")
        finally:
            for client in clients.values():
                client.disconnect()
                client.loop_stop()


def publish_poison(port: int) -> list[tuple[str, bytes]]:
    """The only dead letters the test expects: an unknown device and a message that is not JSON."""
    poison = [
        (
            "yiwang/v1/scale-a/gw-1/telemetry",
            json.dumps(
                {"seq": 1, "readings": [{"device": "ghost", "ts": 1764183600000, "values": {"x": 1}}]}
            ).encode(),
        ),
        ("yiwang/v1/scale-b/gw-2/telemetry", b"{not json"),
    ]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("poison"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in poison:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return poison


def stored_readings(influx: InfluxDatabase) -> dict[tuple[str, str, int], dict[str, float]]:
    """Every point in InfluxDB keyed by (community, device, ts): a series + timestamp is one point, so
    a redelivered message that was written twice still appears once here."""
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for measurement, fields in (("water.level", ("level_cm",)), ("env.th", ("temperature", "humidity"))):
        columns = ", ".join(f'"{f}"' for f in fields)
        statement = f'SELECT {columns}, "community", "device" FROM "{measurement}"'  # noqa: S608 - constants
        response = httpx.post(
            f"{influx.url}/query",
            data={"q": statement, "db": influx.database, "epoch": "ms"},
            timeout=60,
        )
        response.raise_for_status()
        result = response.json()["results"][0]
        assert "error" not in result, result
        for series in result.get("series", []):
            names = series["columns"]
            for row in series["values"]:
                point = dict(zip(names, row, strict=True))
                key = (point["community"], point["device"], int(point["time"]))
                assert key not in out, f"{key} returned twice by InfluxDB"
                out[key] = {f: point[f] for f in fields}
    return out


def point_count(influx: InfluxDatabase) -> int:
    total = 0
    for measurement, field_name in (("water.level", "level_cm"), ("env.th", "temperature")):
        statement = f'SELECT count("{field_name}") FROM "{measurement}"'  # noqa: S608 - constants
        series: Any = influx_query(influx.url, statement, influx.database)[0].get("series")
        total += int(series[0]["values"][0][1]) if series else 0
    return total


def expected_fingerprints(community: str) -> set[str]:
    return {f"flooding-water-level|{community}|{d}" for d in FLOODS} | {
        f"hot-room|{community}|{d}" for d in HOT
    }


def alert_statuses(database_url: str) -> dict[str, str]:
    db = make_engine(database_url)
    try:
        with Session(db) as session:
            return dict(session.execute(select(Alert.fingerprint, Alert.status)).all())
    finally:
        db.dispose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = start_mosquitto(base_dir=tmp_path, extra_config=BROKER_EXTRA)
    yield server
    server.stop()


class Stack:
    """The services of the test, each restartable with exactly the environment it had."""

    def __init__(self, tmp: Path, broker: MosquittoServer, influx: InfluxDatabase, database_url: str) -> None:
        self.tmp = tmp
        suffix = unique_name("s")
        self.base = {
            "YIWANG_MQTT_PORT": str(broker.port),
            "YIWANG_DATABASE_URL": database_url,
            "YIWANG_SERIES_URL": influx.store_url,
            "YIWANG_CONFIG_DIR": str(tmp / "config"),
            "YIWANG_LOG_LEVEL": "INFO",
        }
        self.envs: dict[str, dict[str, str]] = {}
        for replica in ("0", "1"):
            self.envs[f"ingest-{replica}"] = self.base | {
                "YIWANG_INGEST_CLIENT_ID": f"ingest-{suffix}",
                "YIWANG_INGEST_SHARE_GROUP": "ingest",
                "YIWANG_INGEST_REPLICA": replica,
                "YIWANG_INGEST_SPOOL_DIR": str(tmp / "spool"),
                "YIWANG_INGEST_METRICS_PORT": "0",
            }
        for community in COMMUNITIES:
            self.envs[f"alerts-{community}"] = self.base | {
                "YIWANG_ALERTS_CLIENT_ID": f"alerts-{community}-{suffix}",
                "YIWANG_ALERTS_COMMUNITIES": community,
            }
        self.procs: dict[str, Service] = {}
        self.starts: dict[str, int] = {}
        self.down: set[str] = set()  # killed and not restarted (yet)

    def start(self, name: str) -> None:
        """Start (or restart) a service with the environment it had before."""
        kind = name.split("-")[0]
        self.procs[name] = Service([kind], self.envs[name], REPO, self.tmp / f"{name}.log").start()
        self.down.discard(name)
        self.starts[name] = self.starts.get(name, 0) + 1

    def wait_subscribed(self, name: str) -> None:
        service, kind = self.procs[name], name.split("-")[0]
        wait_for(
            lambda: service.log().count(f"{kind} subscribed to") >= self.starts[name],
            60,
            f"{name} to subscribe; log:\n{service.log()[-3000:]}",
        )

    def kill(self, name: str) -> None:
        assert self.procs[name].stop(signal.SIGKILL) == -signal.SIGKILL, f"{name} was not running"
        self.down.add(name)

    def wait_for(self, check: Callable[[], object], timeout: float, what: str, interval: float) -> None:
        """``wait_for`` with the services' logs as they are when it gives up."""
        try:
            wait_for(check, timeout, what, interval)
        except AssertionError as err:
            raise AssertionError(f"{err}; logs:\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.log()[-2500:]}" for n, s in self.procs.items())

    def stop_all(self) -> list[tuple[str, int]]:
        """SIGTERM every running service; the exit codes of those not left dead by a kill."""
        return [(n, s.stop()) for n, s in self.procs.items() if n not in self.down]


@pytest.mark.e2e
@pytest.mark.integration
def test_two_ingest_and_two_alert_workers_survive_a_kill_each(
    tmp_path: Path, broker: MosquittoServer, influx_database: InfluxDatabase, postgres_url: str
) -> None:
    write_config(tmp_path / "config")
    stack = Stack(tmp_path, broker, influx_database, postgres_url)
    init = Service(["db", "init"], stack.base, REPO, tmp_path / "db.log").start()
    assert init.proc is not None and init.proc.wait(60) == 0, init.log()
    gateways = Gateways(broker.port)
    publisher = threading.Thread(target=gateways.run, daemon=True)
    watched = f"hot-room|{KILLED}|th-02"
    before = [f"flooding-water-level|{KILLED}|wl-01", f"hot-room|{KILLED}|th-01"]
    try:
        for name in stack.envs:
            stack.start(name)
        for name in stack.envs:
            stack.wait_subscribed(name)  # the sessions exist: the broker keeps what comes for them
        publisher.start()
        poison = publish_poison(broker.port)

        # Ingest replica 1 dies mid-stream, with batches in flight; a supervisor restarts it 4 s later.
        wait_for(lambda: gateways.elapsed() >= INGEST_KILL_AT_S, 60, "the stream to be under way")
        assert point_count(influx_database) > 0, stack.logs()
        stack.kill("ingest-1")
        ingest_back_at = time.monotonic() + DOWN_S

        # The scale-a alert worker dies while hot-room on th-02 is pending (its `for` still running)
        # and after earlier alerts fired: their cases exist, so a rebuilt engine must not open them again.
        def ready_to_kill() -> bool:
            statuses = alert_statuses(postgres_url)
            assert statuses.get(watched) != "firing", f"{watched} fired before the kill could land"
            return statuses.get(watched) == "pending" and all(
                statuses.get(fp) in ("firing", "resolved") for fp in before
            )

        stack.wait_for(ready_to_kill, 30, f"{watched} pending", interval=0.05)
        stack.kill(f"alerts-{KILLED}")
        killed_at_s = gateways.elapsed()
        alerts_back_at = time.monotonic() + DOWN_S

        time.sleep(max(0.0, ingest_back_at - time.monotonic()))
        stack.start("ingest-1")  # same client id and replica: its session and its share come back
        time.sleep(max(0.0, alerts_back_at - time.monotonic()))
        stack.start(f"alerts-{KILLED}")  # same client id and partition
        stack.wait_subscribed("ingest-1")
        stack.wait_subscribed(f"alerts-{KILLED}")
        restarted_at_s = gateways.elapsed()

        publisher.join(120)
        assert gateways.error is None, f"publisher failed: {gateways.error!r}"
        assert gateways.tick == TICKS

        # Every reading, exactly as sent, each counted once.
        expected = len(gateways.sent)
        assert expected == TICKS * 4 * len(gateway_devices(1))
        stack.wait_for(
            lambda: point_count(influx_database) >= expected, 90, f"{expected} readings in InfluxDB", 0.5
        )
        stored = stored_readings(influx_database)
        assert point_count(influx_database) == expected
        assert stored.keys() == gateways.sent.keys()
        assert {k: v for k, v in stored.items() if v != gateways.sent[k]} == {}

        # Each worker has caught up once every scripted alert resolved (the last thing in the stream).
        wanted = expected_fingerprints(COMMUNITIES[0]) | expected_fingerprints(COMMUNITIES[1])
        stack.wait_for(
            lambda: all(alert_statuses(postgres_url).get(fp) == "resolved" for fp in wanted),
            90,
            "every scripted alert fired and resolved",
            0.5,
        )
        check_cases(postgres_url, wanted)

        db = make_engine(postgres_url)
        try:
            letters = {(d.topic, d.payload) for d in DeadLetterStore(db).latest()}
        finally:
            db.dispose()
        assert letters == set(poison)
        for replica in ("ingest-0", "ingest-1"):
            assert "subscribed to $share/ingest/yiwang/v1/+/+/telemetry" in stack.procs[replica].log()

        # What the kill hit, for the record (-s): the scripted times are seconds of stream.
        print(
            f"\nalerts {KILLED} killed at {killed_at_s:.1f}s, back at {restarted_at_s:.1f}s;"
            f" breaches while down: {[d for d, s in {**HOT, **{k: v[0] for k, v in FLOODS.items()}}.items() if killed_at_s <= s < restarted_at_s]}"
        )
    finally:
        if publisher.is_alive():
            publisher.join(30)
        stopped = stack.stop_all()
        assert [(n, code) for n, code in stopped if code != 0] == [], stack.logs()


def check_cases(database_url: str, wanted: set[str]) -> None:
    """Each scripted alert opened exactly one case, nothing else opened one, and nothing joined twice."""
    db = make_engine(database_url)
    try:
        with Session(db) as session:
            per_fingerprint: dict[str, list[int]] = {}
            for fp, case_id in session.execute(select(Evidence.alert_fingerprint, Evidence.case_id)):
                per_fingerprint.setdefault(fp, []).append(case_id)
            assert {fp: ids for fp, ids in per_fingerprint.items() if len(ids) != 1} == {}
            assert per_fingerprint.keys() == wanted
            cases = list(session.execute(select(Case.id, Case.community, Case.grid, Case.category)))
            assert len(cases) == len(wanted)
            assert len({(c, g, cat) for _, c, g, cat in cases}) == len(cases)
            assert {cid for ids in per_fingerprint.values() for cid in ids} == {c[0] for c in cases}
            by_action = select(CaseEvent.action, func.count()).group_by(CaseEvent.action)
            actions = dict(session.execute(by_action).all())
            assert actions.get("opened") == len(wanted), actions
            assert "alert_joined" not in actions and "alert_recurred" not in actions, actions
            opened = session.scalar(
                select(func.count()).select_from(AlertHistory).where(AlertHistory.opened_case.is_(True))
            )
            assert opened == len(wanted)
    finally:
        db.dispose()
