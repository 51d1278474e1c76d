"""A QoS 1 consumer that acknowledges each message only after its handler stored it.

paho's network thread puts messages on a bounded queue (a full queue blocks that thread, which stops
reading the socket: the broker holds the rest, nothing grows without bound). One worker thread hands
batches to the handler and acknowledges them — in the order received — once the handler returns True.
Unacknowledged messages stay with the broker (persistent session) and come back after a restart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from yiwang.common.mqtt import consumer_client, log_disconnect
from yiwang.common.settings import MqttSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes


def retry_until_stopped(
    action: Callable[[], object], what: str, stop: threading.Event, errors: tuple[type[BaseException], ...]
) -> bool:
    """Run ``action`` until it succeeds (True), backing off up to 30 s, or until ``stop`` is set (False).

    Errors not in ``errors`` propagate: they mean "retrying will not help".
    """
    delay = 0.5
    while True:
        try:
            action()
            return True
        except errors as err:
            log.warning("%s unavailable (%s); retrying in %.1fs, nothing acknowledged", what, err, delay)
            if stop.wait(delay):
                return False
            delay = min(delay * 2, 30.0)


class AckingConsumer:
    def __init__(
        self,
        *,
        name: str,
        client_id: str,
        settings: MqttSettings,
        topics: Sequence[str],
        handle: Callable[[list[Inbound]], bool],
        stop: threading.Event,
        idle: Callable[[], None] | None = None,
        batch_messages: int = 500,
        queue_size: int = 10_000,
    ) -> None:
        self._name, self._topics, self._handle, self._stop = name, list(topics), handle, stop
        self._idle = idle  # runs in the worker thread between batches (timers), never concurrently
        self._settings, self._batch_messages = settings, batch_messages
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._client = consumer_client(client_id, settings)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = log_disconnect(name)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused %s: %s", self._name, reason)
            return
        for topic in self._topics:
            client.subscribe(topic, qos=1)
        log.info("%s subscribed to %s", self._name, ", ".join(self._topics))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(Inbound(msg.mid, msg.qos, msg.topic, bytes(msg.payload)), timeout=0.5)
                return
            except queue.Full:
                continue  # backpressure: paho stops reading the socket while we wait

    def _next_batch(self) -> list[Inbound]:
        try:
            batch = [self._queue.get(timeout=0.5)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + 0.05
        while len(batch) < self._batch_messages:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def run(self) -> None:
        s = self._settings
        self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=30)
        self._client.loop_start()
        try:
            while not self._stop.is_set():
                batch = self._next_batch()
                if batch and self._handle(batch):
                    for msg in batch:
                        if msg.qos > 0:
                            self._client.ack(msg.mid, msg.qos)
                if self._idle is not None:
                    self._idle()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
