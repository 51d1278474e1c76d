"""The consumers' buffered paho client: same bytes, same packets, fewer system calls."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common.bufferedmqtt import BufferedClient, BufferedSocket
from common.mqtt import SESSION_EXPIRY_S, consumer_client, v5_connect_properties
from common.settings import MqttSettings
from yiwang.bench.mqttload import RawPublisher
from yiwang.servers import MosquittoServer, unique_name


@pytest.fixture
def pair() -> Iterator[tuple[BufferedSocket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    yield BufferedSocket(ours, chunk=64), theirs
    ours.close()
    theirs.close()


def test_hands_out_what_is_asked_and_keeps_the_rest_pending(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, peer = pair
    peer.sendall(bytes(range(100)))
    assert sock.recv(1) == b"\x00"
    assert sock.pending() == 63  # one chunk of 64 read from the kernel
    assert sock.recv(10) == bytes(range(1, 11))
    assert sock.recv(1000) == bytes(range(11, 64))  # what is buffered; never more than asked
    assert sock.pending() == 0
    assert sock.recv(1000) == bytes(range(64, 100))  # straight from the kernel: fits the request


def test_nothing_buffered_or_waiting_is_a_blocking_error_and_eof_is_empty(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, peer = pair
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    peer.sendall(b"ab")
    peer.shutdown(socket.SHUT_WR)
    assert sock.recv(1) == b"a" and sock.recv(1) == b"b"
    assert sock.recv(1) == b""


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_every_message_arrives_intact_and_in_order(mosquitto: MosquittoServer, protocol: int) -> None:
    """Sizes from 0 bytes to 200 kB, so packets straddle the 256 kB reads in every way."""
    sizes = [0, 1, 127, 128, 16_383, 16_384, 200_000, *(n * 997 % 70_000 for n in range(300))]
    messages = [("bench/buffered", os.urandom(size), 1) for size in sizes]
    received: list[bytes] = []
    done = threading.Event()

    def on_message(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(msg.payload)
        client.ack(msg.mid, msg.qos)
        if len(received) == len(messages):
            done.set()

    client = BufferedClient(
        CallbackAPIVersion.VERSION2, client_id=unique_name("buf"), protocol=protocol, manual_ack=True
    )
    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        client.subscribe("bench/buffered", qos=1)
        assert subscribed.wait(10)
        assert isinstance(client.socket(), BufferedSocket)
        publisher = RawPublisher(mosquitto.port, unique_name("pub"))
        try:
            publisher.run(messages, timeout=60)
        finally:
            publisher.close()
        assert done.wait(60), f"{len(received)} of {len(messages)} arrived"
    finally:
        client.disconnect()
        client.loop_stop()
    assert received == [payload for _, payload, _ in messages]


def _session_client(
    mosquitto: MosquittoServer, client_id: str, protocol: int, on_message: Callable[..., None]
) -> BufferedClient:
    """A persistent-session QoS 1 subscriber with manual acks (the consumers' own), connected and
    subscribed."""
    settings = MqttSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    client = consumer_client(client_id, settings, mqtt5=protocol == mqtt.MQTTv5)
    if protocol == mqtt.MQTTv5:
        client.connect(
            mosquitto.host,
            mosquitto.port,
            clean_start=False,
            properties=v5_connect_properties(SESSION_EXPIRY_S),
        )
    else:
        client.connect(mosquitto.host, mosquitto.port)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message  # before the loop starts: redeliveries follow the CONNACK at once
    client.loop_start()
    client.subscribe("bench/acks", qos=1)
    assert subscribed.wait(10)
    return client


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_ack_many_acknowledges_exactly_the_messages_given(mosquitto: MosquittoServer, protocol: int) -> None:
    """Ack every other message in one write (from another thread, as the consumer does): after a
    reconnect the broker redelivers the other half, and only those."""
    client_id = unique_name("acks")
    received: list[mqtt.MQTTMessage] = []
    arrived = threading.Condition()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with arrived:
            received.append(msg)
            arrived.notify_all()

    def wait_for(count: int) -> None:
        with arrived:
            assert arrived.wait_for(lambda: len(received) >= count, timeout=10), f"{len(received)} < {count}"

    client = _session_client(mosquitto, client_id, protocol, on_message)
    publisher = RawPublisher(mosquitto.port, unique_name("pub"))
    try:
        publisher.run([("bench/acks", str(n).encode(), 1) for n in range(10)], timeout=10)
        wait_for(10)
        client.ack_many([msg.mid for msg in received if int(msg.payload) % 2 == 0])
        # The broker answers a connection's packets in order: once it acks this, it has read the batch.
        client.publish("bench/settled", b"", qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()

    received.clear()
    client = _session_client(mosquitto, client_id, protocol, on_message)
    try:
        wait_for(5)
        publisher.run([("bench/acks", b"marker", 1)], timeout=10)  # anything redelivered came before it
        wait_for(6)
        client.ack_many([msg.mid for msg in received])
    finally:
        client.disconnect()
        client.loop_stop()
        publisher.close()
    assert [msg.payload for msg in received] == [b"1", b"3", b"5", b"7", b"9", b"marker"]
