"""The server side of a rollout in a test: a registry with the gateways, the desired-version
publisher (``registry.version_publisher``) and the recorder of each gateway's state that the alert
service is in production (``alerts.fleet.record_gateway``), all on one database and a real broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.fleet import gateway_states, record_gateway
from alerts.schema import create_schema as create_alert_schema
from common.db import Base, create_tables
from common.settings import MqttSettings
from contract.messages import StateMessage, decode_message
from contract.topics import Topic, TopicKind
from registry.models import TABLES, RegistryCommunity, RegistryGateway, RegistryTown
from registry.rollout_models import ensure_tables
from registry.version_publisher import DesiredVersionPublisher


def register(db: Engine, community: str, gateways: list[str]) -> None:
    create_tables(db, Base.metadata, tables=list(TABLES))
    create_alert_schema(db)
    ensure_tables(db)
    with Session(db) as session, session.begin():
        session.add(RegistryTown(id=f"town-{community}", name="Town", district=""))
        session.flush()
        session.add(RegistryCommunity(id=community, name=community, town_id=f"town-{community}"))
        session.flush()
        for gateway in gateways:
            session.add(
                RegistryGateway(
                    community_id=community, id=gateway, name=gateway, created_at=datetime.now(UTC)
                )
            )


@dataclass
class Recorder:
    """Every message of the community, with its arrival time; states recorded as the alert service does."""

    db: Engine
    messages: list[tuple[float, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        topic = Topic.parse(msg.topic)
        with self.lock:
            self.messages.append((at, topic.kind.value, bytes(msg.payload)))
        if topic.kind is TopicKind.STATE:
            state = decode_message(TopicKind.STATE, bytes(msg.payload))
            assert isinstance(state, StateMessage)
            record_gateway(self.db, topic.community, topic.gateway, state)

    def of_kind(self, kind: TopicKind) -> list[tuple[float, bytes]]:
        with self.lock:
            return [(at, p) for at, k, p in self.messages if k == kind.value and p]

    def running(self, community: str, gateway: str) -> str | None:
        row = gateway_states(self.db).get((community, gateway))
        return row.state.get("agent") if row and row.online else None

    def upgrade(self, community: str, gateway: str) -> dict[str, Any]:
        row = gateway_states(self.db).get((community, gateway))
        return dict((row.state.get("upgrade") or {}) if row else {})


@contextmanager
def fleet_server(db: Engine, host: str, port: int, community: str) -> Iterator[Recorder]:
    """The publisher and the state recorder running; retained versions cleared afterwards."""
    recorder = Recorder(db)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-fleet-{uuid.uuid4().hex[:8]}")
    subscribed = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"yiwang/v1/{community}/+/+", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = recorder.on_message
    client.connect(host, port)
    client.loop_start()
    assert subscribed.wait(10)
    states = lambda: {k: r.state for k, r in gateway_states(db).items()}  # noqa: E731
    publisher = DesiredVersionPublisher(db, MqttSettings(mqtt_host=host, mqtt_port=port), states, poll_s=0.5)
    publisher.start()
    try:
        yield recorder
    finally:
        publisher.stop()
        for key in gateway_states(db):
            client.publish(Topic(*key, TopicKind.VERSION).path, b"", qos=1, retain=True).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
