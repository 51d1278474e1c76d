"""The gateway publisher against a real Mosquitto: contract messages, retained state, spool, outages."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from contract.catalog import load_catalog
from contract.messages import (
    DeviceEntry,
    DevicesMessage,
    Event,
    EventMessage,
    Reading,
    StateMessage,
    TelemetryMessage,
    decode_message,
)
from contract.topics import Topic, TopicKind, subscription
from edge.publisher import GatewayPublisher, MqttOptions
from edge.settings import EdgeSettings
from edge.simulate import run_simulated_community
from edge.simulated_devices import simulators_for
from edge.spool import Spool
from yiwang.servers import MosquittoServer, free_port, start_mosquitto

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[2] / "config"
GATEWAY = "gw-01"
T0 = 1_764_183_600_000
PHASES: tuple[Literal["start", "update", "end"], ...] = ("start", "update", "end")
DEVICES = [
    DeviceEntry(device="th-0101", type="env.th@1"),
    DeviceEntry(device="cam-01", type="camera.events@1"),
]


class Subscriber:
    """A plain paho subscriber that records every message it receives (QoS 1)."""

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        *,
        client_id: str | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.topic = topic
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        # A persistent session when named: messages published while it is away are queued for it.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{uuid.uuid4().hex[:8]}",
            clean_session=client_id is None,
        )
        self.client.reconnect_delay_set(1, 2)
        if credentials:
            self.client.username_pw_set(*credentials)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), msg.retain))

    def of_kind(self, kind: TopicKind) -> list[tuple[bytes, bool]]:
        with self._lock:
            return [(p, r) for t, p, r in self.messages if Topic.parse(t).kind is kind]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(
    condition: Callable[[], bool], publisher: GatewayPublisher | None = None, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        if publisher is not None:
            publisher.pump()  # what the service's tick does every second
        time.sleep(0.05)


def readings_for(seconds: int, start_ms: int = T0) -> list[list[Reading]]:
    """Realistic batches: one per simulated second, as the service ticks."""
    sim = simulators_for(load_catalog(CONFIG), "zhuganxiang", seed=5)[GATEWAY]
    batches = [sim.step(start_ms + i * 1000)[0] for i in range(seconds)]
    return [b for b in batches if b]


@pytest.fixture
def community() -> str:
    # A fresh community id per test: retained messages of other tests never show up.
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "gw.sqlite3") as s:
        yield s


def make_publisher(
    server: MosquittoServer | tuple[str, int], community: str, spool: Spool
) -> GatewayPublisher:
    host, port = (server.host, server.port) if isinstance(server, MosquittoServer) else server
    options = MqttOptions(host=host, port=port, reconnect_min_s=1, reconnect_max_s=2, max_queued=50)
    return GatewayPublisher(community, GATEWAY, spool, DEVICES, options)


def keys(readings: Iterable[Reading]) -> list[tuple[str, int]]:
    """Readings as sorted (device, ts): order across messages is not part of the contract."""
    return sorted((r.device, r.ts) for r in readings)


def decoded_telemetry(sub: Subscriber) -> list[TelemetryMessage]:
    out = []
    for payload, _ in sub.of_kind(TopicKind.TELEMETRY):
        message = decode_message(TopicKind.TELEMETRY, payload)
        assert isinstance(message, TelemetryMessage)
        out.append(message)
    return out


def test_telemetry_and_events_arrive_as_contract_messages(
    mosquitto: MosquittoServer, community: str, spool: Spool
) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, subscription(TopicKind.TELEMETRY, community=community))
    events_sub = Subscriber(
        mosquitto.host, mosquitto.port, subscription(TopicKind.EVENT, community=community)
    )
    publisher = make_publisher(mosquitto, community, spool)
    try:
        publisher.start()
        wait_for(lambda: publisher.connected)
        batches = readings_for(60)
        for batch in batches:
            publisher.publish_readings(batch)
        event_id = uuid.uuid4()
        events = [
            Event(
                device="cam-01",
                ts=T0 + i,
                id=event_id,
                kind="camera.motion",
                phase=phase,
                attrs={"zone": "fire-lane", "score": 0.8},
            )
            for i, phase in enumerate(PHASES)
        ]
        publisher.publish_events(events)
        wait_for(lambda: spool.depth() == 0, publisher)
        total = sum(len(b) for b in batches)
        wait_for(lambda: sum(len(m.readings) for m in decoded_telemetry(sub)) >= total)
        wait_for(lambda: len(events_sub.of_kind(TopicKind.EVENT)) >= 1)
    finally:
        publisher.stop()
        sub.close()
        events_sub.close()

    received = decoded_telemetry(sub)
    seqs = [m.seq for m in received]
    assert len(seqs) == len(set(seqs))
    assert keys(r for m in received for r in m.readings) == keys(r for b in batches for r in b)
    assert max(len(m.readings) for m in received) > 1, "a tick's readings share one message"
    (payload, _), *_ = events_sub.of_kind(TopicKind.EVENT)
    event_message = decode_message(TopicKind.EVENT, payload)
    assert isinstance(event_message, EventMessage)
    assert event_message.events == events
    assert sorted([*seqs, event_message.seq]) == list(range(1, spool.stats().last_seq + 1)), "no seq gap"
    assert spool.depth() == 0
    assert publisher.outstanding == 0


def test_late_subscriber_sees_retained_state_and_devices(
    mosquitto: MosquittoServer, community: str, spool: Spool
) -> None:
    publisher = make_publisher(mosquitto, community, spool)
    state_topic = Topic(community, GATEWAY, TopicKind.STATE).path
    devices_topic = Topic(community, GATEWAY, TopicKind.DEVICES).path
    publisher.start()
    try:
        wait_for(lambda: publisher.connected)
        time.sleep(0.3)  # let the birth messages reach the broker
        late = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/{GATEWAY}/+")
        wait_for(
            lambda: len(late.of_kind(TopicKind.STATE)) >= 1 and len(late.of_kind(TopicKind.DEVICES)) >= 1
        )
        late.close()
    finally:
        publisher.stop()

    (state_payload, retained), *_ = late.of_kind(TopicKind.STATE)
    state = decode_message(TopicKind.STATE, state_payload)
    assert retained
    assert isinstance(state, StateMessage)
    assert state.online is True
    assert state.agent
    assert state.spool is not None
    assert state.spool.depth == 0
    (devices_payload, retained), *_ = late.of_kind(TopicKind.DEVICES)
    devices = decode_message(TopicKind.DEVICES, devices_payload)
    assert retained
    assert isinstance(devices, DevicesMessage)
    assert devices.devices == DEVICES

    # After a clean stop the retained state says offline.
    after = Subscriber(mosquitto.host, mosquitto.port, state_topic)
    try:
        wait_for(lambda: len(after.of_kind(TopicKind.STATE)) >= 1)
    finally:
        after.close()
    offline = decode_message(TopicKind.STATE, after.of_kind(TopicKind.STATE)[0][0])
    assert isinstance(offline, StateMessage)
    assert offline.online is False
    assert devices_topic.endswith("/devices")


def test_broker_outage_spools_then_delivers_everything(tmp_path: Path, community: str, spool: Spool) -> None:
    # A private broker: halting the shared one would disturb other tests.
    broker = start_mosquitto(base_dir=tmp_path)
    topic = subscription(TopicKind.TELEMETRY, community=community)
    sub = Subscriber(broker.host, broker.port, topic, client_id=f"test-sub-{community}")
    publisher = make_publisher(broker, community, spool)
    batches = readings_for(120)
    before, burst, during, after = batches[:20], batches[20:50], batches[50:90], batches[90:]
    try:
        publisher.start()
        wait_for(lambda: publisher.connected)
        for b in before:
            publisher.publish_readings(b)
        wait_for(lambda: spool.depth() == 0, publisher)

        # The broker goes away while a burst is still in flight: what it did not acknowledge is resent.
        for b in burst:
            publisher.publish_readings(b)
        broker.halt()
        wait_for(lambda: not publisher.connected)
        for batch in during:
            depth = spool.depth()
            publisher.publish_readings(batch)
            assert spool.depth() == depth + len(batch)  # accumulates on disk, nothing is dropped
        assert spool.oldest_ts() is not None

        broker.start()
        wait_for(lambda: publisher.connected)
        for batch in after:
            publisher.publish_readings(batch)
        wait_for(lambda: spool.depth() == 0, publisher, timeout=30)
        seqs = set(range(1, spool.stats().last_seq + 1))
        wait_for(lambda: {m.seq for m in decoded_telemetry(sub)} >= seqs, timeout=30)
    finally:
        publisher.stop()
        sub.close()
        broker.stop()

    received = decoded_telemetry(sub)
    # At-least-once: every seq arrived (a resend may duplicate one), and duplicates are identical.
    by_seq = {m.seq: m for m in received}
    assert set(by_seq) == seqs
    assert all(by_seq[m.seq] == m for m in received)
    assert keys(r for s in by_seq for r in by_seq[s].readings) == keys(r for b in batches for r in b)
    assert spool.stats().dropped == dict.fromkeys(("expired", "downsampled", "evicted", "refused"), 0)


def test_unacknowledged_messages_are_resent_after_a_broker_crash(
    tmp_path: Path, community: str, spool: Spool
) -> None:
    broker = start_mosquitto(base_dir=tmp_path)
    publisher = make_publisher(broker, community, spool)
    sub: Subscriber | None = None
    batches = readings_for(120)
    try:
        publisher.start()
        wait_for(lambda: publisher.connected)
        # Freeze the broker so nothing gets a PUBACK, then crash it with records in flight.
        pid = broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        for b in batches:
            publisher.publish_readings(b)
        total = sum(len(b) for b in batches)
        wait_for(lambda: publisher.outstanding == publisher.options.max_queued)
        assert spool.depth() == total  # nothing acknowledged, nothing deleted
        assert spool.stats().last_seq == publisher.outstanding  # only the window got seqs; the rest waits
        broker.halt(kill=True)
        wait_for(lambda: not publisher.connected)
        assert spool.depth() == total  # no PUBACK, no delete
        seqs = set(range(1, spool.stats().last_seq + 1))

        broker.start()
        # Subscribe before the publisher's reconnect (its backoff is at least 1 s).
        sub = Subscriber(broker.host, broker.port, subscription(TopicKind.TELEMETRY, community=community))
        wait_for(lambda: spool.depth() == 0, publisher, timeout=30)
        seqs = set(range(1, spool.stats().last_seq + 1))
        wait_for(lambda: {m.seq for m in decoded_telemetry(sub)} >= seqs)
    finally:
        publisher.stop()
        if sub is not None:
            sub.close()
        broker.stop()
    assert {m.seq for m in decoded_telemetry(sub)} == seqs
    assert keys(r for m in decoded_telemetry(sub) for r in m.readings) == keys(r for b in batches for r in b)


def test_spool_of_a_previous_run_is_delivered_on_connect(
    mosquitto: MosquittoServer, community: str, tmp_path: Path
) -> None:
    path = tmp_path / "gw.sqlite3"
    batches = readings_for(20)
    # First run: the broker is unreachable (nothing listens on this port); everything stays spooled.
    with Spool(path) as spool:
        offline = make_publisher(("127.0.0.1", free_port()), community, spool)
        offline.start()
        for b in batches[:10]:
            offline.publish_readings(b)
        offline.stop()
        first = sum(len(b) for b in batches[:10])
        assert spool.depth() == first
        assert spool.stats().last_seq == 0  # no seq is spent on a message that was never sent

    sub = Subscriber(mosquitto.host, mosquitto.port, subscription(TopicKind.TELEMETRY, community=community))
    with Spool(path) as spool:
        publisher = make_publisher(mosquitto, community, spool)
        try:
            publisher.start()
            wait_for(lambda: publisher.connected)
            for b in batches[10:]:
                publisher.publish_readings(b)
            wait_for(lambda: spool.depth() == 0, publisher)
            last = spool.stats().last_seq
            wait_for(lambda: {m.seq for m in decoded_telemetry(sub)} >= set(range(1, last + 1)))
        finally:
            publisher.stop()
            sub.close()
    received = decoded_telemetry(sub)
    assert keys(r for m in received for r in m.readings) == keys(r for b in batches for r in b)
    assert len(received) < len(batches), "the spooled backlog left as fewer, larger messages"


def test_service_publishes_the_community_and_stops_offline(tmp_path: Path) -> None:
    broker = start_mosquitto(base_dir=tmp_path)
    sub = Subscriber(broker.host, broker.port, "yiwang/v1/zhuganxiang/#")
    settings = EdgeSettings(
        mqtt_port=broker.port, config_dir=CONFIG, spool_dir=tmp_path / "spool", tick_s=0.2
    )
    stop = threading.Event()
    service = threading.Thread(target=run_simulated_community, args=(settings, stop))
    service.start()
    try:
        wait_for(
            lambda: (
                {Topic.parse(t).gateway for t, _, _ in sub.messages if t.endswith("/telemetry")}
                == {
                    "gw-01",
                    "gw-02",
                }
            )
        )
    finally:
        stop.set()
        service.join(timeout=30)
        sub.close()
    assert not service.is_alive()
    try:
        late = Subscriber(broker.host, broker.port, "yiwang/v1/zhuganxiang/+/state")
        wait_for(lambda: len(late.of_kind(TopicKind.STATE)) == 2)
        late.close()
    finally:
        broker.stop()
    for payload, retained in late.of_kind(TopicKind.STATE):
        state = decode_message(TopicKind.STATE, payload)
        assert isinstance(state, StateMessage)
        assert retained
        assert state.online is False
    for gateway in ("gw-01", "gw-02"):
        with Spool(tmp_path / "spool" / "zhuganxiang" / f"{gateway}.sqlite3") as spool:
            assert spool.depth() == 0


def test_live_data_overtakes_a_rate_limited_backlog(
    mosquitto: MosquittoServer, community: str, tmp_path: Path
) -> None:
    path = tmp_path / "gw.sqlite3"
    backlog = [
        Reading(device="th-0101", ts=T0 + i * 1000, values={"temperature": 20.0 + i % 7}) for i in range(4000)
    ]
    with Spool(path, live_window_s=1) as spool:
        for i in range(0, len(backlog), 100):
            spool.append_readings(backlog[i : i + 100])
        time.sleep(1.1)  # the spooled data is now older than the live window: backlog
        sub = Subscriber(
            mosquitto.host, mosquitto.port, subscription(TopicKind.TELEMETRY, community=community)
        )
        options = MqttOptions(port=mosquitto.port, drain_per_s=500, max_queued=50)
        publisher = GatewayPublisher(community, GATEWAY, spool, DEVICES, options)
        live = Reading(device="th-0102", ts=T0 + 10_000_000, values={"temperature": 30.0})
        try:
            publisher.start()
            wait_for(lambda: publisher.connected)
            publisher.publish_readings([live])
            wait_for(lambda: any(live in m.readings for m in decoded_telemetry(sub)), publisher)
            # At 500 backlog readings/s the 4,000 spooled ones are still draining when live data is out.
            assert spool.depth() > 0
            wait_for(lambda: spool.depth() == 0, publisher, timeout=60)
            wait_for(lambda: sum(len(m.readings) for m in decoded_telemetry(sub)) >= len(backlog) + 1)
        finally:
            publisher.stop()
            sub.close()
    received = decoded_telemetry(sub)
    assert keys(r for m in received for r in m.readings) == keys([*backlog, live])
    assert max(len(m.readings) for m in received) > 100, "the backlog left in large messages"
