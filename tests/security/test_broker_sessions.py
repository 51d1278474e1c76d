"""Attack: a stolen gateway key takes over a service's MQTT session by connecting with its client id.

With clean start, a broker that keys sessions by the client id alone kicks the connected service and
throws away its persistent session: its subscriptions and the backlog queued while it was away. The
brokers bind a client id to its account instead (broker/mosquitto.py says how), so the service keeps
both. Run against a real Mosquitto from the shipped configuration and the embedded broker as
`yiwang broker --embedded` runs it. The session also keeps what the service received and never
acknowledged (it stopped before its write committed): the next connect delivers it again. And what
the broker acknowledged to a gateway reaches the service even when the gateway disconnects at once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker.accounts import AccountStore, Credentials
from common.mqtt import consumer_client, shut_down
from common.settings import MqttSettings
from contract.topics import Topic, TopicKind, subscription
from tests.platform import Service, wait_for
from yiwang.servers import free_port, start_mosquitto

HOST = "127.0.0.1"
SERVICE_CLIENT_IDS = {"ingest": "yiwang-ingest", "alerts": "yiwang-alerts"}
BACKLOG = 20
TELEMETRY = Topic("c1", "gw-01", TopicKind.TELEMETRY).path  # the sender gateway's own topic


class ServiceSession:
    """A service's consumer (common/mqtt.py) with a persistent session; acks what it receives unless
    told not to (a service that stops before its write commits)."""

    def __init__(self, port: int, client_id: str, login: Credentials, *, ack: bool = True) -> None:
        settings = MqttSettings(mqtt_port=port, mqtt_username=login.username, mqtt_password=login.password)
        self.client = consumer_client(client_id, settings)
        self.ack = ack
        self.unacked: list[int] = []
        self.received: list[bytes] = []
        self.session_present: bool | None = None
        self.connected = threading.Event()
        self.dropped = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.dropped.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(60, 60)  # a kick must show, not be hidden by a reconnect

    def _on_connect(self, _c: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        assert not reason.is_failure, f"the service was refused: {reason}"
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.received.append(bytes(msg.payload))
        if self.ack:
            client.ack(msg.mid, msg.qos)
        else:
            self.unacked.append(msg.mid)

    def close(self) -> None:
        shut_down(self.client)


def connect_service(port: int, client_id: str, login: Credentials, *, ack: bool = True) -> ServiceSession:
    session = ServiceSession(port, client_id, login, ack=ack)
    session.client.connect(HOST, port, keepalive=30)
    session.client.loop_start()
    assert session.connected.wait(10), "the service got no CONNACK"
    return session


def subscribe(session: ServiceSession) -> None:
    acked = threading.Event()
    session.client.on_subscribe = lambda *_: acked.set()
    session.client.subscribe(subscription(TopicKind.TELEMETRY), qos=1)
    assert acked.wait(10), "no SUBACK"


def publish(port: int, login: Credentials, topic: str, seqs: range, *, burst: bool = False) -> None:
    """QoS 1 telemetry from the gateway that owns ``topic``, one at a time or (``burst``) all in flight
    at once; disconnects as soon as the broker acked it all."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{login.username}")
    client.username_pw_set(login.username, login.password)
    client.connect(HOST, port)
    client.loop_start()
    try:
        sent = []
        for seq in seqs:
            body = {"seq": seq, "readings": [{"device": "th-1", "ts": seq, "values": {"t": 1.0}}]}
            sent.append(client.publish(topic, json.dumps(body), qos=1))
            if not burst:
                sent[-1].wait_for_publish(10)
        for info in sent:
            info.wait_for_publish(10)
    finally:
        shut_down(client)


def hijack(port: int, thief: Credentials, client_id: str) -> str:
    """Connect with a gateway's own login and the service's client id, clean start; the CONNACK."""
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome.append(str(reason))
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.username_pw_set(thief.username, thief.password)
    client.on_connect = on_connect
    client.connect(HOST, port)
    client.loop_start()
    try:
        answered.wait(10)
    finally:
        shut_down(client)
    return outcome[0] if outcome else "no answer"


def seqs_of(payloads: list[bytes]) -> set[int]:
    return {int(json.loads(p)["seq"]) for p in payloads}


@pytest.fixture(params=["mosquitto", "embedded"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, dict[str, Credentials]]]:
    store = AccountStore(tmp_path / "accounts")
    logins = {name: store.add_service(name) for name in SERVICE_CLIENT_IDS}
    logins["thief"] = store.add_gateway("c1", "gw-stolen")
    logins["sender"] = store.add_gateway("c1", "gw-01")
    if request.param == "mosquitto":
        server = start_mosquitto(base_dir=tmp_path, accounts_dir=store.directory)
        yield server.port, logins
        server.stop()
        return
    port = free_port()
    env = {"YIWANG_MQTT_PORT": str(port)}
    argv = ["broker", "--embedded", "--accounts-dir", str(store.directory)]
    embedded = Service(argv, env, tmp_path, tmp_path / "broker.log").start()
    wait_for(lambda: _listening(port), 30, f"the embedded broker; log:\n{embedded.log()}")
    yield port, logins
    embedded.stop()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("service", sorted(SERVICE_CLIENT_IDS))
def test_a_gateway_cannot_take_a_services_session(
    broker: tuple[int, dict[str, Credentials]], service: str
) -> None:
    port, logins = broker
    client_id, login = SERVICE_CLIENT_IDS[service], logins[service]

    first = connect_service(port, client_id, login)
    subscribe(first)
    first.close()
    publish(port, logins["sender"], TELEMETRY, range(1, BACKLOG + 1))  # queued while it is away

    hijack(port, logins["thief"], client_id)

    back = connect_service(port, client_id, login)
    try:
        assert back.session_present, "the service's persistent session was discarded"
        wait_for(lambda: len(back.received) >= BACKLOG or None, 15, "the queued backlog")
        assert seqs_of(back.received) == set(range(1, BACKLOG + 1))

        # Connected now: the attempt must not kick it, and it keeps receiving.
        hijack(port, logins["thief"], client_id)
        publish(port, logins["sender"], TELEMETRY, range(BACKLOG + 1, BACKLOG + 2))
        wait_for(lambda: BACKLOG + 1 in seqs_of(back.received) or None, 15, "a message after the attack")
        assert not back.dropped.is_set(), "the hijack attempt kicked the connected service"
    finally:
        back.close()


def test_what_a_service_did_not_acknowledge_is_delivered_again_when_it_returns(
    broker: tuple[int, dict[str, Credentials]],
) -> None:
    port, logins = broker
    client_id, login = SERVICE_CLIENT_IDS["ingest"], logins["ingest"]
    sent = set(range(1, 6))

    first = connect_service(port, client_id, login, ack=False)
    subscribe(first)
    publish(port, logins["sender"], TELEMETRY, range(1, 6))
    wait_for(lambda: seqs_of(first.received) == sent or None, 15, "the first deliveries")
    first.close()  # gone before it acknowledged them: its write never committed

    back = connect_service(port, client_id, login)
    try:
        assert back.session_present, "the service's persistent session was discarded"
        wait_for(lambda: seqs_of(back.received) >= sent or None, 15, "the unacknowledged messages again")
    finally:
        back.close()


def test_a_late_acknowledgement_settles_the_message(broker: tuple[int, dict[str, Credentials]]) -> None:
    """A consumer slower than the embedded broker's 5 s acknowledgement wait is not sent it again."""
    port, logins = broker
    client_id, login = SERVICE_CLIENT_IDS["ingest"], logins["ingest"]

    slow = connect_service(port, client_id, login, ack=False)
    subscribe(slow)
    publish(port, logins["sender"], TELEMETRY, range(1, 4))
    wait_for(lambda: len(slow.unacked) == 3 or None, 15, "the first deliveries")
    time.sleep(6)  # past amqtt's PUBACK wait
    for mid in slow.unacked:
        slow.client.ack(mid, 1)
    time.sleep(0.5)
    slow.close()

    back = connect_service(port, client_id, login)
    try:
        publish(port, logins["sender"], TELEMETRY, range(4, 5))
        wait_for(lambda: 4 in seqs_of(back.received) or None, 15, "the next message")
        assert seqs_of(back.received) == {4}, "acknowledged messages were delivered again"
    finally:
        back.close()


def test_what_the_broker_acknowledged_is_delivered_though_the_sender_left_at_once(
    broker: tuple[int, dict[str, Credentials]],
) -> None:
    port, logins = broker
    client_id, login = SERVICE_CLIENT_IDS["ingest"], logins["ingest"]
    service = connect_service(port, client_id, login)
    try:
        subscribe(service)
        for burst in range(5):  # a gateway that sends its last readings and stops, five times
            publish(port, logins["sender"], TELEMETRY, range(burst * 100 + 1, burst * 100 + 101), burst=True)
        sent = set(range(1, 501))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seqs_of(service.received) >= sent:
            time.sleep(0.1)
        missing = sorted(sent - seqs_of(service.received))
        assert not missing, f"{len(missing)} acknowledged readings never arrived: {missing[:20]}"
    finally:
        service.close()
