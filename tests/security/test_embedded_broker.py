"""Attacks on the embedded broker as `yiwang broker --embedded` runs it, over raw MQTT 3.1.1 packets.

The attacker writes its own CONNECT and PUBLISH bytes, as a hostile client would, so nothing in a client
library smooths an attack over: a wrong password sent with ingest's client id and clean start, a last will
aimed at topics the account may not publish, and a PUBLISH of many megabytes. The listeners are real
clients (paho) of the same real broker process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker.accounts import AccountStore, Credentials
from contract.messages import MAX_PAYLOAD_BYTES
from contract.topics import Topic, TopicKind, subscription
from tests.platform import Service, wait_for
from yiwang.servers import free_port

HOST = "127.0.0.1"
INGEST_CLIENT_ID = "yiwang-ingest"
CONNACK_ACCEPTED, CONNACK_NOT_AUTHORIZED = 0, 5
QUIET_S = 2.0  # how long a listener must hear nothing for "nothing was published"

OWN_STATE = Topic("c1", "gw-01", TopicKind.STATE).path
OWN_TELEMETRY = Topic("c1", "gw-01", TopicKind.TELEMETRY).path
OTHER_COMMUNITY_TELEMETRY = Topic("c2", "gw-09", TopicKind.TELEMETRY).path
OTHER_GATEWAY_CONFIG = Topic("c1", "gw-02", TopicKind.CONFIG).path


# Raw MQTT 3.1.1 packets ---------------------------------------------------------------------------


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


@dataclass(frozen=True)
class Will:
    topic: str
    message: bytes
    retain: bool = False
    qos: int = 1


def connect_packet(
    client_id: str, login: Credentials | None, *, will: Will | None = None, clean: bool = True
) -> bytes:
    flags = 0x02 if clean else 0
    payload = _field(client_id.encode())
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _field(will.topic.encode()) + _field(will.message)
    if login is not None:
        flags |= 0x80 | 0x40
        payload += _field(login.username.encode()) + _field(login.password.encode())
    body = _field(b"MQTT") + bytes([4, flags]) + (30).to_bytes(2, "big") + payload
    return b"\x10" + _remaining_length(len(body)) + body


def publish_header(topic: str, payload_size: int) -> bytes:
    """A QoS 1 PUBLISH up to its payload (packet id 1): the attacker streams the payload after it."""
    variable = _field(topic.encode()) + (1).to_bytes(2, "big")
    return b"\x32" + _remaining_length(len(variable) + payload_size) + variable


def raw_connect(port: int, packet: bytes) -> tuple[socket.socket, int]:
    """A socket that sent ``packet``, and the CONNACK's return code (-1: closed without one)."""
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.sendall(packet)
    connack = b""
    while len(connack) < 4:
        chunk = sock.recv(4 - len(connack))
        if not chunk:
            return sock, -1
        connack += chunk
    assert connack[0] == 0x20, f"not a CONNACK: {connack.hex()}"
    return sock, connack[3]


def closed_by_broker(sock: socket.socket, timeout: float = 10.0) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):  # a PUBACK or anything else: the connection still serves
            return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


# Real listeners -----------------------------------------------------------------------------------


@dataclass
class Listener:
    """A paho client of one service account; records what arrives on the topics it subscribed."""

    client: mqtt.Client
    received: list[mqtt.MQTTMessage] = field(default_factory=list)
    session_present: bool | None = None
    connected: threading.Event = field(default_factory=threading.Event)

    def on_topic(self, topic: str) -> list[mqtt.MQTTMessage]:
        return [m for m in self.received if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def listen(
    port: int, login: Credentials, filters: list[str], *, client_id: str = "", clean: bool = True
) -> Listener:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    listener = Listener(client)
    subscribed = threading.Event()

    def on_connect(_c: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        assert not reason.is_failure, f"{login.username} was refused: {reason}"
        listener.session_present = bool(flags.session_present)
        listener.connected.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: listener.received.append(msg)
    client.username_pw_set(login.username, login.password)
    client.reconnect_delay_set(60, 60)  # a kick must show, not be hidden by a reconnect
    client.connect(HOST, port, keepalive=30)
    client.loop_start()
    assert listener.connected.wait(10), f"{login.username} got no CONNACK"
    if filters:
        client.subscribe([(f, 1) for f in filters])
        assert subscribed.wait(10), "no SUBACK"
    return listener


def publish(port: int, login: Credentials, topic: str, payload: bytes) -> None:
    """One QoS 1 message from a well-behaved client; returns once the broker acked it."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{login.username}")
    client.username_pw_set(login.username, login.password)
    client.connect(HOST, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


# The broker -------------------------------------------------------------------------------------


@dataclass
class EmbeddedBroker:
    port: int
    process: Service
    logins: dict[str, Credentials]

    def rss_kb(self) -> int:
        assert self.process.proc is not None
        status = Path(f"/proc/{self.process.proc.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))

    def alive(self) -> bool:
        return self.process.proc is not None and self.process.proc.poll() is None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    store = AccountStore(tmp_path / "accounts")
    logins = {
        "ingest": store.add_service("ingest"),
        "watcher": store.add_service("watcher"),
        "gw-01": store.add_gateway("c1", "gw-01"),
        "gw-02": store.add_gateway("c1", "gw-02"),
        "gw-09": store.add_gateway("c2", "gw-09"),
    }
    port = free_port()
    argv = ["broker", "--embedded", "--accounts-dir", str(store.directory)]
    process = Service(argv, {"YIWANG_MQTT_PORT": str(port)}, tmp_path, tmp_path / "broker.log").start()
    wait_for(lambda: _listening(port), 30, f"the embedded broker; log:\n{process.log()}")
    yield EmbeddedBroker(port, process, logins)
    process.stop()


# (a) A wrong password with ingest's client id and clean start --------------------------------------


@pytest.mark.parametrize("thief_login", ["wrong password of svc.ingest", "no login"])
def test_a_refused_login_leaves_ingests_session_alone(broker: EmbeddedBroker, thief_login: str) -> None:
    port, logins = broker.port, broker.logins
    ingest = listen(
        port, logins["ingest"], [subscription(TopicKind.TELEMETRY)], client_id=INGEST_CLIENT_ID, clean=False
    )
    ingest.close()
    queued = [f"backlog-{i}".encode() for i in range(5)]
    for payload in queued:  # published while ingest is away: the broker keeps them in its session
        publish(port, logins["gw-01"], OWN_TELEMETRY, payload)

    login = Credentials("svc.ingest", "not-the-password") if thief_login.startswith("wrong") else None
    sock, code = raw_connect(port, connect_packet(INGEST_CLIENT_ID, login, clean=True))
    sock.close()
    assert code in (CONNACK_NOT_AUTHORIZED, -1), f"the broker accepted {thief_login} (CONNACK {code})"

    back = listen(port, logins["ingest"], [], client_id=INGEST_CLIENT_ID, clean=False)
    try:
        assert back.session_present, "ingest's stored session was discarded by a refused login"
        wait_for(lambda: len(back.received) >= len(queued) or None, 10, "ingest's queued messages")
        assert sorted(m.payload for m in back.received) == sorted(queued)
        publish(port, logins["gw-01"], OWN_TELEMETRY, b"after")  # the subscription survived too
        wait_for(lambda: any(m.payload == b"after" for m in back.received) or None, 10, "a new message")
    finally:
        back.close()


# (b) A last will on topics the account may not publish ---------------------------------------------


@pytest.mark.parametrize(
    "will",
    [
        Will(OTHER_COMMUNITY_TELEMETRY, b'{"seq": 1, "readings": []}'),
        Will(OTHER_GATEWAY_CONFIG, b'{"forged": "config"}', retain=True),
    ],
    ids=["another communitys telemetry", "another gateways retained config"],
)
def test_a_will_on_anothers_topic_is_refused_and_never_published(broker: EmbeddedBroker, will: Will) -> None:
    port, logins = broker.port, broker.logins
    watcher = listen(port, logins["watcher"], [will.topic])
    try:
        sock, code = raw_connect(port, connect_packet("gw-01", logins["gw-01"], will=will))
        sock.close()  # dropped without DISCONNECT: a will the broker had kept would go out now
        assert code in (CONNACK_NOT_AUTHORIZED, -1), f"gw-01 connected with a will on {will.topic}"
        time.sleep(QUIET_S)
        assert watcher.on_topic(will.topic) == [], f"gw-01's will was published on {will.topic}"
    finally:
        watcher.close()
    late = listen(port, logins["ingest"], [will.topic])  # a retained will would reach a new subscriber
    try:
        time.sleep(QUIET_S)
        assert late.on_topic(will.topic) == [], f"gw-01's will was retained on {will.topic}"
    finally:
        late.close()


def test_a_will_on_the_gateways_own_state_topic_still_works(broker: EmbeddedBroker) -> None:
    port, logins = broker.port, broker.logins
    watcher = listen(port, logins["watcher"], [OWN_STATE])
    try:
        will = Will(OWN_STATE, b'{"online": false}', retain=True)
        sock, code = raw_connect(port, connect_packet("gw-01", logins["gw-01"], will=will))
        assert code == CONNACK_ACCEPTED, f"gw-01's own will was refused (CONNACK {code})"
        sock.close()  # the connection drops: the broker publishes the will
        wait_for(lambda: watcher.on_topic(OWN_STATE) or None, 10, "gw-01's will on its state topic")
        assert watcher.on_topic(OWN_STATE)[0].payload == will.message
    finally:
        watcher.close()


# (c) Oversized packets -----------------------------------------------------------------------------

OVERSIZED = 5 * 1024 * 1024
ATTACKS = 20
CHUNK = b"x" * 65536


def send_oversized_publish(port: int, login: Credentials) -> bool:
    """Stream one PUBLISH of ``OVERSIZED`` payload bytes; whether the broker closed the connection."""
    sock, code = raw_connect(port, connect_packet("attacker", login))
    assert code == CONNACK_ACCEPTED, f"the attacker's own login was refused (CONNACK {code})"
    with sock:
        try:
            sock.sendall(publish_header(OWN_TELEMETRY, OVERSIZED))
            for _ in range(OVERSIZED // len(CHUNK)):
                sock.sendall(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            return True  # closed while the payload was still coming: it was never read whole
        return closed_by_broker(sock)


def test_an_oversized_publish_is_refused_without_costing_its_size(broker: EmbeddedBroker) -> None:
    port, logins = broker.port, broker.logins
    # Ingest is away with a persistent session: whatever the broker accepts is kept for it in memory.
    away = listen(
        port, logins["ingest"], [subscription(TopicKind.TELEMETRY)], client_id=INGEST_CLIENT_ID, clean=False
    )
    away.close()
    watcher = listen(port, logins["watcher"], [subscription(TopicKind.TELEMETRY)])
    try:
        # The contract's largest payload still passes: the limit is Mosquitto's, not tighter.
        largest = b"y" * MAX_PAYLOAD_BYTES
        publish(port, logins["gw-02"], Topic("c1", "gw-02", TopicKind.TELEMETRY).path, largest)
        wait_for(lambda: any(m.payload == largest for m in watcher.received) or None, 10, "a 256 KiB message")

        assert send_oversized_publish(port, logins["gw-01"]), "the broker kept reading a 5 MB PUBLISH"
        before_kb = broker.rss_kb()
        for attack in range(ATTACKS):
            assert send_oversized_publish(port, logins["gw-01"]), f"attack {attack + 1} was not refused"
        grown_kb = broker.rss_kb() - before_kb
        assert grown_kb * 1024 < OVERSIZED, f"{ATTACKS} refused packets grew the broker by {grown_kb} kB"

        assert broker.alive(), f"the broker died; log:\n{broker.process.log()}"
        publish(port, logins["gw-02"], Topic("c1", "gw-02", TopicKind.TELEMETRY).path, b"still serving")
        wait_for(lambda: any(m.payload == b"still serving" for m in watcher.received) or None, 10, "service")
        assert all(len(m.payload) <= MAX_PAYLOAD_BYTES for m in watcher.received), "an oversized message"
    finally:
        watcher.close()
    back = listen(port, logins["ingest"], [], client_id=INGEST_CLIENT_ID, clean=False)
    try:
        wait_for(lambda: any(m.payload == b"still serving" for m in back.received) or None, 10, "the backlog")
        assert all(len(m.payload) <= MAX_PAYLOAD_BYTES for m in back.received), "an oversized message queued"
    finally:
        back.close()
