"""The desired-config publisher on a real Mosquitto: retained, only when a hash moved, all again after a
reconnect, and no connection at all while the registry manages no gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from broker.accounts import AccountStore, Credentials
from common.db import Base, create_tables, make_engine
from common.settings import MqttSettings
from contract.topics import TopicKind
from registry import editing
from registry.config_publisher import DesiredConfigPublisher
from registry.models import TABLES, RegistryBus
from tests.edge.test_publisher import Subscriber
from tests.platform import wait_for
from yiwang.servers import MosquittoServer, start_mosquitto

pytestmark = pytest.mark.integration
C = "pub-test"
TYPES = {"env.th@1"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = start_mosquitto(base_dir=tmp_path / "broker")
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path}/registry.db")
    create_tables(db, Base.metadata, tables=list(TABLES))
    with Session(db) as session, session.begin():
        editing.add_town(session, {"id": "town-1", "name": "越河街道"})
        editing.add_community(session, {"id": C, "name": "测试社区", "town": "town-1"})
        editing.add_grid(session, C, {"id": "g-1", "name": "一网格"})
        for gateway in ("gw-a", "gw-b"):
            editing.add_gateway(session, C, {"id": gateway})
    yield db
    db.dispose()


def _place(db: Engine, gateway: str, device: str, unit: int) -> None:
    with Session(db) as session, session.begin():
        if session.get(RegistryBus, (C, gateway, "b")) is None:
            editing.add_bus(session, C, gateway, {"id": "b", "kind": "modbus_rtu", "port": f"/dev/{gateway}"})
        fields = {"id": device, "type": "env.th@1", "grid": "g-1", "bus": "b", "unit": unit}
        editing.add_device(session, C, gateway, fields, TYPES)


def test_configs_are_published_retained_when_their_hash_moves(broker: MosquittoServer, db: Engine) -> None:
    publisher = DesiredConfigPublisher(db, MqttSettings(mqtt_host=broker.host, mqtt_port=broker.port))
    try:
        assert publisher.sync() == 0
        assert publisher.status()["connected"] is False  # nothing managed: no connection opened

        _place(db, "gw-a", "th-1", 1)
        _place(db, "gw-b", "th-2", 1)
        wait_for(lambda: publisher.sync() == 2, 10, "both configs published once connected")
        assert publisher.sync() == 0  # nothing moved

        _place(db, "gw-b", "th-3", 2)
        assert publisher.sync() == 1  # only the gateway whose config changed

        # Once the broker has the new config (a subscriber sees it go by: the publish is asynchronous),
        # a gateway connecting afterwards finds it retained.
        def device_ids(payload: bytes) -> list[str]:
            return [d["id"] for d in json.loads(payload)["config"]["buses"][0]["devices"]]

        watcher = Subscriber(broker.host, broker.port, f"yiwang/v1/{C}/gw-b/config")
        wait_for(
            lambda: any(device_ids(p) == ["th-2", "th-3"] for p, _ in watcher.of_kind(TopicKind.CONFIG)),
            5,
            "the new config at the broker",
        )
        watcher.close()
        late = Subscriber(broker.host, broker.port, f"yiwang/v1/{C}/gw-b/config")
        wait_for(lambda: late.of_kind(TopicKind.CONFIG), 5, "the retained config")
        payload, retained = late.of_kind(TopicKind.CONFIG)[-1]
        assert retained and device_ids(payload) == ["th-2", "th-3"]
        late.close()

        # After a broker restart every config goes out again (a broker may forget retained messages).
        broker.restart()
        wait_for(lambda: publisher.sync() == 2, 20, "all configs republished after the reconnect")
    finally:
        publisher.stop()


def test_only_an_admin_account_may_publish_configs_and_a_refusal_is_said(tmp_path: Path, db: Engine) -> None:
    store = AccountStore(tmp_path / "accounts")
    admin, service = store.add_service("api", admin=True), store.add_service("alerts")
    broker = start_mosquitto(base_dir=tmp_path / "acl-broker", accounts_dir=store.directory)
    _place(db, "gw-a", "th-1", 1)

    def publisher(account: Credentials) -> DesiredConfigPublisher:
        settings = MqttSettings(
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            mqtt_username=account.username,
            mqtt_password=SecretStr(account.password),
        )
        return DesiredConfigPublisher(db, settings)

    refused, allowed = publisher(service), publisher(admin)
    watcher = Subscriber(
        broker.host, broker.port, f"yiwang/v1/{C}/+/config", credentials=(admin.username, admin.password)
    )
    try:
        wait_for(lambda: refused.sync() == 1, 10, "the service account's attempt")
        error = wait_for(lambda: refused.status()["error"], 10, "the broker's refusal reported")
        assert f"{C}/gw-a" in error and "authori" in error.lower()
        assert watcher.of_kind(TopicKind.CONFIG) == []

        wait_for(lambda: allowed.sync() == 1, 10, "the admin account's publication")
        wait_for(lambda: watcher.of_kind(TopicKind.CONFIG), 5, "the config on the broker")
        assert allowed.status()["error"] is None
    finally:
        watcher.close()
        refused.stop()
        allowed.stop()
        broker.stop()
