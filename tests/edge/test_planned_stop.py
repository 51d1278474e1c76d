"""A planned stop is not an outage: a clean stop's retained state says so, the last will does not."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.messages import StateMessage, decode_message
from contract.topics import Topic, TopicKind
from edge.settings import EdgeSettings
from edge.simulate import run_simulated_community
from edge.spool import Spool
from tests.edge.test_publisher import CONFIG, GATEWAY, Subscriber, make_publisher, wait_for
from yiwang.servers import MosquittoServer, start_mosquitto

pytestmark = pytest.mark.integration


@pytest.fixture
def community() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"  # retained messages of other tests never show up


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "gw.sqlite3") as s:
        yield s


def states(sub: Subscriber) -> list[tuple[StateMessage, bool]]:
    out = []
    for payload, retained in sub.of_kind(TopicKind.STATE):
        state = decode_message(TopicKind.STATE, payload)
        assert isinstance(state, StateMessage)
        out.append((state, retained))
    return out


def retained_states(server: MosquittoServer, topic: str, count: int) -> list[StateMessage]:
    late = Subscriber(server.host, server.port, topic)
    try:
        wait_for(lambda: len(late.of_kind(TopicKind.STATE)) >= count)
    finally:
        late.close()
    found = states(late)
    assert all(retained for _, retained in found)
    return [state for state, _ in found]


def test_a_clean_stop_publishes_a_retained_stopped_state(
    mosquitto: MosquittoServer, community: str, spool: Spool
) -> None:
    publisher = make_publisher(mosquitto, community, spool)
    topic = Topic(community, GATEWAY, TopicKind.STATE).path
    publisher.start()
    try:
        wait_for(lambda: publisher.connected)
    finally:
        publisher.stop()
    [state] = retained_states(mosquitto, topic, 1)
    assert (state.online, state.reason, state.planned_stop) == (False, "stopped", True)
    assert state.ts is not None and state.spool is not None


def test_a_stop_forced_by_a_failure_says_no_reason(
    mosquitto: MosquittoServer, community: str, spool: Spool
) -> None:
    publisher = make_publisher(mosquitto, community, spool)
    topic = Topic(community, GATEWAY, TopicKind.STATE).path
    publisher.start()
    try:
        wait_for(lambda: publisher.connected)
    finally:
        publisher.stop(planned=False)
    [state] = retained_states(mosquitto, topic, 1)
    assert (state.online, state.reason, state.planned_stop) == (False, None, False)


def test_a_lost_link_still_sends_the_plain_last_will(
    mosquitto: MosquittoServer, community: str, spool: Spool
) -> None:
    publisher = make_publisher(mosquitto, community, spool)
    sub = Subscriber(mosquitto.host, mosquitto.port, Topic(community, GATEWAY, TopicKind.STATE).path)
    publisher.start()
    try:
        wait_for(lambda: any(s.online for s, _ in states(sub)))
        # The link drops without a DISCONNECT packet: the broker publishes the gateway's last will.
        sock = publisher._client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        wait_for(lambda: any(not s.online for s, _ in states(sub)))
    finally:
        publisher.stop()
        sub.close()
    will = next(s for s, _ in states(sub) if not s.online)
    assert will == StateMessage(online=False)
    assert will.planned_stop is False


def test_the_simulator_stopped_cleanly_leaves_every_gateway_stopped(tmp_path: Path) -> None:
    broker = start_mosquitto(base_dir=tmp_path)
    settings = EdgeSettings(
        mqtt_port=broker.port, config_dir=CONFIG, spool_dir=tmp_path / "spool", tick_s=0.2
    )
    sub = Subscriber(broker.host, broker.port, "yiwang/v1/zhuganxiang/+/state")
    stop = threading.Event()
    service = threading.Thread(target=run_simulated_community, args=(settings, stop))
    service.start()
    try:
        wait_for(lambda: sum(s.online for s, _ in states(sub)) >= 2)
    finally:
        stop.set()
        service.join(timeout=30)
        sub.close()
    try:
        stopped = retained_states(broker, "yiwang/v1/zhuganxiang/+/state", 2)
    finally:
        broker.stop()
    assert [(s.online, s.reason) for s in stopped] == [(False, "stopped")] * 2
