"""A plain paho subscriber recording decoded event messages (kept here so camera tests stand alone)."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.messages import EventMessage, decode_message
from contract.topics import TopicKind, subscription


class EventSubscriber:
    def __init__(self, host: str, port: int, community: str) -> None:
        self._payloads: list[bytes] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        topic = subscription(TopicKind.EVENT, community=community)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-cam-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._payloads.append(bytes(msg.payload))

    def messages(self) -> list[EventMessage]:
        """Every event message so far, each validated against the contract."""
        with self._lock:
            payloads = list(self._payloads)
        out = []
        for payload in payloads:
            message = decode_message(TopicKind.EVENT, payload)
            assert isinstance(message, EventMessage)
            out.append(message)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
