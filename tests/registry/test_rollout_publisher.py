"""The desired-version publisher against a real Mosquitto (SQLite and PostgreSQL): each gateway's
version goes out retained, so a late subscriber gets it; when a gateway of a wave rolls back, the
rollout stops by itself and the gateways of the wave that had not started are told nothing any more
(their retained version is cleared)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy.orm import Session

from common.db import make_engine
from common.settings import MqttSettings
from contract.messages import DesiredVersionMessage, decode_message
from contract.topics import TopicKind
from registry.rollouts import latest_rollouts, start_canary, widen
from registry.version_publisher import DesiredVersionPublisher
from tests.edge.test_publisher import Subscriber
from tests.edge.upgrade.rollout_fleet import register
from tests.platform import wait_for
from yiwang.servers import MosquittoServer


def retained(mosquitto: MosquittoServer, community: str) -> dict[str, str]:
    """What a gateway connecting now would get: each gateway's retained desired version."""
    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/+/version")
    time.sleep(1.0)  # retained messages arrive right after the subscription
    sub.close()
    out = {}
    for topic, payload, is_retained in sub.messages:
        if not is_retained:
            continue  # published while this subscriber listened: not what a gateway connecting now gets
        message = decode_message(TopicKind.VERSION, payload)
        assert isinstance(message, DesiredVersionMessage)
        out[topic.split("/")[3]] = message.version
    return out


def expect_retained(mosquitto: MosquittoServer, community: str, expected: dict[str, str]) -> None:
    """The retained versions come to ``expected`` (a publish may still be on its way to the broker)."""
    wait_for(lambda: retained(mosquitto, community) == expected, 10, f"retained versions {expected}")


def settle(publisher: DesiredVersionPublisher) -> None:
    deadline = time.monotonic() + 10
    while publisher.sync() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # the first round only connects
    time.sleep(0.3)  # PUBACKs


def test_versions_go_out_retained_and_a_stopped_rollout_withdraws_the_rest(
    database_url: str, mosquitto: MosquittoServer
) -> None:
    community = f"p-{uuid.uuid4().hex[:8]}"
    db = make_engine(database_url)
    register(db, community, ["gw-01", "gw-02", "gw-03"])
    states: dict[tuple[str, str], dict[str, Any]] = {}
    mqtt = MqttSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    publisher = DesiredVersionPublisher(db, mqtt, lambda: states)
    try:
        assert publisher.sync() == 0 and publisher._client is None  # nothing desired: no connection
        with Session(db) as session, session.begin():
            start_canary(session, "0.2.0", ["gw-01"], "test")
        settle(publisher)
        expect_retained(mosquitto, community, {"gw-01": "0.2.0"})

        states[(community, "gw-01")] = {"agent": "0.2.0"}
        with Session(db) as session, session.begin():
            widen(session, "0.2.0", states, None)
        settle(publisher)
        expect_retained(mosquitto, community, {"gw-01": "0.2.0", "gw-02": "0.2.0", "gw-03": "0.2.0"})

        # 0.3.0: the canary runs it, then a wave to all; gw-02 rolls back before gw-03 even started.
        with Session(db) as session, session.begin():
            start_canary(session, "0.3.0", ["gw-01"], "test")
        states[(community, "gw-01")] = {"agent": "0.3.0"}
        with Session(db) as session, session.begin():
            widen(session, "0.3.0", states, None)
        settle(publisher)
        expect_retained(mosquitto, community, {"gw-01": "0.3.0", "gw-02": "0.3.0", "gw-03": "0.3.0"})
        states[(community, "gw-02")] = {
            "agent": "0.2.0",
            "upgrade": {"attempt": "0.3.0", "outcome": "rolled_back", "reason": "crashed at start"},
        }
        states[(community, "gw-03")] = {"agent": "0.2.0"}
        # "done" at 100 %: a finished rollout is not watched; the wave is stopped only while rolling.
        with Session(db) as session:
            assert latest_rollouts(session, 1)[0].status == "done"

        with Session(db) as session, session.begin():
            start_canary(session, "0.4.0", ["gw-01"], "test")
        states[(community, "gw-01")] = {"agent": "0.4.0"}
        with Session(db) as session, session.begin():
            widen(session, "0.4.0", states, 70)  # all three: 70 % of 3 gateways, rounded up
        states[(community, "gw-02")] = {
            "agent": "0.3.0",
            "upgrade": {"attempt": "0.4.0", "outcome": "rolled_back", "reason": "not healthy within 120 s"},
        }
        settle(publisher)
        with Session(db) as session:
            rollout = latest_rollouts(session, 1)[0]
            assert rollout.status == "stopped"
            assert rollout.stopped_reason == f"{community}/gw-02 rolled back 0.4.0: not healthy within 120 s"
        # gw-03 had not started 0.4.0: cleared; gw-02 keeps its (rolled back) desired version.
        expect_retained(mosquitto, community, {"gw-01": "0.4.0", "gw-02": "0.4.0"})
    finally:
        publisher.stop()
        db.dispose()
