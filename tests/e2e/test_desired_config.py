"""Desired config end to end: a device added in the registry is polled by a real `yiwang edge run` agent.

A real Mosquitto, the registry in SQLite, emulated Modbus slaves behind a socat pty pair, the desired
config publisher running, and the agent as its own process that nobody touches after its start: its
gateway file names no bus at all; everything it polls comes from the registry.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.accounts import ensure_demo_operator
from common.db import Base, create_tables, make_engine
from common.settings import MqttSettings
from contract.messages import EventMessage, StateMessage, TelemetryMessage
from contract.topics import TopicKind
from registry import editing
from registry.config_publisher import DesiredConfigPublisher
from registry.desired import DesiredConfig, config_drift, render
from registry.models import TABLES
from tests.edge.sources.emulators import ModbusEmulator, Slave, pty_pair
from tests.edge.test_publisher import Subscriber
from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.servers import MosquittoServer, free_port, start_mosquitto

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
GATEWAY = "gw-d1"
TYPES = {"env.th@1", "water.level@1"}


@pytest.fixture
def community() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def registry_db(tmp_path: Path, community: str) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path}/registry.db")
    create_tables(db, Base.metadata, tables=list(TABLES))
    with Session(db) as session, session.begin():
        editing.add_town(session, {"id": "town-1", "name": "越河街道"})
        editing.add_community(session, {"id": community, "name": "测试社区", "town": "town-1"})
        editing.add_grid(session, community, {"id": "g-1", "name": "一网格"})
        editing.add_gateway(session, community, {"id": GATEWAY, "name": "泵房网关"})
    yield db
    db.dispose()


@pytest.fixture
def slaves() -> Iterator[str]:
    units = [Slave(1, {1: 215, 2: 550}), Slave(2, {1: 230, 2: 600}), Slave(3, {4: 1234})]
    with pty_pair() as pair, ModbusEmulator(units, port=pair.device):
        yield pair.gateway


def _old_profiles(tmp_path: Path) -> Path:
    """The gateway's config dir: its sensor types are older than the registry's (no water level)."""
    config_dir = tmp_path / "gateway-config"
    shutil.copytree(CONFIG_DIR / "sensor-types", config_dir / "sensor-types")
    (config_dir / "sensor-types" / "water.level.yaml").unlink()
    return config_dir


def _gateway_file(tmp_path: Path, community: str, mosquitto: MosquittoServer) -> Path:
    path = tmp_path / "gateway.yaml"
    settings = {
        "community": community,
        "gateway": GATEWAY,
        "config_dir": str(_old_profiles(tmp_path)),
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "reconnect_max_s": 1},
        "spool": {"dir": str(tmp_path / "spool")},
        "metrics": {"port": None},
        "state_interval_s": 1,
    }
    path.write_text(json.dumps(settings), encoding="utf-8")  # JSON is YAML
    return path


def _change(db: Engine, change: Callable[[Session], Any]) -> None:
    with Session(db) as session, session.begin():
        change(session)


def _desired(db: Engine, community: str) -> DesiredConfig:
    with Session(db) as session:
        desired = render(session, community, GATEWAY)
    assert desired is not None
    return desired


def test_a_device_added_in_the_registry_is_polled_by_the_agent(
    mosquitto: MosquittoServer, registry_db: Engine, community: str, slaves: str, tmp_path: Path
) -> None:
    db = registry_db

    def add_device(device: str, kind: str, unit: int) -> None:
        fields = {
            "id": device,
            "type": kind,
            "grid": "g-1",
            "bus": "rs485-1",
            "unit": unit,
            "poll_s": 0.3,
            "options": {"max_interval_s": 0.3},  # report every poll, changed or not
        }
        _change(db, lambda s: editing.add_device(s, community, GATEWAY, fields, TYPES))

    bus = {"id": "rs485-1", "kind": "modbus_rtu", "port": slaves, "timeout_s": 0.2, "retries": 0}
    _change(db, lambda s: editing.add_bus(s, community, GATEWAY, bus))
    add_device("th-1", "env.th@1", 1)

    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/{GATEWAY}/+")
    settings = MqttSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    publisher = DesiredConfigPublisher(db, settings, poll_s=0.2)
    agent = Service(
        ["edge", "run", "--config", str(_gateway_file(tmp_path, community, mosquitto))],
        env={},
        cwd=tmp_path,
        log_path=tmp_path / "agent.log",
    )

    def polled() -> set[str]:
        readings = (
            TelemetryMessage.model_validate_json(p).readings for p, _ in sub.of_kind(TopicKind.TELEMETRY)
        )
        return {r.device for batch in readings for r in batch}

    def readings_of(device: str) -> int:
        telemetry = (TelemetryMessage.model_validate_json(p) for p, _ in sub.of_kind(TopicKind.TELEMETRY))
        return sum(r.device == device for m in telemetry for r in m.readings)

    def state() -> StateMessage | None:
        states = sub.of_kind(TopicKind.STATE)
        return StateMessage.model_validate_json(states[-1][0]) if states else None

    def applied() -> str | None:
        last = state()
        return last.config_applied if last else None

    def applied_events() -> list[str]:
        events = (EventMessage.model_validate_json(p).events for p, _ in sub.of_kind(TopicKind.EVENT))
        return [str(e.attrs["hash"]) for batch in events for e in batch if e.kind == "config.applied"]

    publisher.start()
    agent.start()
    try:
        first = _desired(db, community)
        wait_for(lambda: "th-1" in polled(), 20, "the registry's first device polled")
        wait_for(lambda: applied() == first.hash, 10, "the applied hash in the retained state")

        # A device added through the registry, nobody touching the gateway: polled within seconds.
        add_device("th-2", "env.th@1", 2)
        second = _desired(db, community)
        wait_for(lambda: "th-2" in polled(), 10, "the added device polled")
        wait_for(lambda: applied() == second.hash, 10, "the new applied hash")
        assert config_drift(second, state().model_dump()).drift is False  # type: ignore[union-attr]

        # A config the gateway cannot run (its profiles do not know water.level@1): refused with the
        # reason, and the running set keeps being polled.
        add_device("wl-3", "water.level@1", 3)
        third = _desired(db, community)

        def refusal() -> str | None:
            last = state()
            refused = last.config_refused if last else None
            return refused.reason if refused and refused.hash == third.hash else None

        reason = wait_for(refusal, 10, "the refusal in the retained state")
        assert "unknown sensor type 'water.level@1'" in reason
        drift = config_drift(third, state().model_dump())  # type: ignore[union-attr]
        assert (drift.drift, drift.refusing, drift.applied) == (True, True, second.hash)
        before = readings_of("th-2")
        wait_for(lambda: readings_of("th-2") > before + 3, 10, "the old set still polled")
        assert "wl-3" not in polled()

        # Offline during two changes: on its return it applies the newest config alone.
        agent.stop()
        _change(db, lambda s: editing.change_device(s, community, "wl-3", {"state": "retired"}, TYPES))
        _change(db, lambda s: editing.change_device(s, community, "th-1", {"poll_s": 0.5}, TYPES))
        newest = _desired(db, community)
        assert newest.hash not in (first.hash, second.hash, third.hash)

        def last_published() -> str | None:
            configs = sub.of_kind(TopicKind.CONFIG)
            return str(json.loads(configs[-1][0])["hash"]) if configs else None

        wait_for(lambda: last_published() == newest.hash, 10, "the newest config published")
        events_before = len(applied_events())
        agent.start()
        wait_for(lambda: applied() == newest.hash, 20, "the newest config applied after the reconnect")
        assert applied_events()[events_before:] == [newest.hash]
        counts = readings_of("th-1"), readings_of("th-2")
        wait_for(
            lambda: readings_of("th-1") > counts[0] and readings_of("th-2") > counts[1],
            10,
            "both devices polled again",
        )
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.stop()
        publisher.stop()
        sub.close()
    assert "Traceback" not in agent.log()


def _answering(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=5).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def test_the_api_process_publishes_and_shows_drift_as_the_alert_service_records_it(
    tmp_path: Path, slaves: str
) -> None:
    """The chain as deployed: a bus added through the API, the API process publishing, the agent
    applying, the alert service recording its state, the API answering desired against reported."""
    broker = start_mosquitto(base_dir=tmp_path / "broker")
    http_port = free_port()
    database_url = f"sqlite:///{tmp_path}/yiwang.db"
    env = {
        "YIWANG_MQTT_HOST": broker.host,
        "YIWANG_MQTT_PORT": str(broker.port),
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_DATABASE_URL": database_url,
        "YIWANG_SERIES_URL": f"sqlite:///{tmp_path}/series.db",
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_ALERTS_CLIENT_ID": f"alerts-{http_port}",
    }
    api = Service(["api"], env, tmp_path, tmp_path / "api.log").start()
    alerts: Service | None = None
    agent: Service | None = None
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: _answering(base), 60, f"the API; log:\n{api.log()}")
        alerts = Service(["alerts"], env, tmp_path, tmp_path / "alerts.log").start()
        db = make_engine(database_url)
        token = ensure_demo_operator(db, tmp_path / "credentials.json")["token"]
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        bus = {"id": "rs485-1", "kind": "modbus_rtu", "port": slaves, "timeout_s": 0.2, "retries": 0}
        added = http.post("/api/v1/gateways/zhuganxiang/gw-01/buses", json=bus)
        assert added.status_code == 201, added.text
        fields = {"id": "th-91", "type": "env.th@1", "grid": "g-north", "bus": "rs485-1", "unit": 1}
        _change(db, lambda s: editing.add_device(s, "zhuganxiang", "gw-01", fields, TYPES))

        def config() -> dict[str, Any]:
            answer = http.get("/api/v1/gateways/zhuganxiang/gw-01/config")
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        assert config()["drift"] is True  # wanted, not running anywhere yet
        gateway_file = tmp_path / "gateway.yaml"
        gateway_file.write_text(
            json.dumps(
                {
                    "community": "zhuganxiang",
                    "gateway": "gw-01",
                    "config_dir": str(CONFIG_DIR),
                    "mqtt": {"host": broker.host, "port": broker.port, "reconnect_max_s": 1},
                    "spool": {"dir": str(tmp_path / "spool")},
                    "metrics": {"port": None},
                }
            ),
            encoding="utf-8",
        )
        agent = Service(["edge", "run", "--config", str(gateway_file)], {}, tmp_path, tmp_path / "agent.log")
        agent.start()
        in_sync = wait_for(
            lambda: (lambda c: c if not c["drift"] else None)(config()),
            30,
            f"the reported config in sync; logs:\n{api.log()}\n{alerts.log()}\n{agent.log()}",
        )
        assert in_sync["applied_hash"] == in_sync["desired_hash"] and in_sync["online"] is True
        db.dispose()
        http.close()
    finally:
        for service in (agent, alerts, api):
            if service is not None and service.proc is not None and service.proc.poll() is None:
                service.stop()
        broker.stop()
