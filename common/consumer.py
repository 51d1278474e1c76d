"""A QoS 1 consumer that acknowledges each message only after its handler stored it.

paho's network thread puts messages on a bounded queue (a full queue blocks that thread, which stops
reading the socket: the broker holds the rest, nothing grows without bound). A dispatcher thread cuts
batches and hands them to the handler; with ``pipeline`` > 1 up to that many batches are handled at
once (a batch is decoded while the one before it is still being written), and PUBACKs still go out in
the order the messages arrived, each only after its own batch's handler returned True.
Unacknowledged messages stay with the broker (persistent session) and come back after a restart.
"""

from __future__ import annotations

import collections
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from common.mqtt import SESSION_EXPIRY_S, consumer_client, log_disconnect, shut_down, v5_connect_properties
from common.settings import MqttSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes
    # Which connection delivered it. A packet id means something only on its own connection: after a
    # reconnect the broker resends unacknowledged messages itself and may reuse ids for new ones.
    connection: int = 0
    # Delivered with the retain flag: the broker replayed a stored message because we subscribed.
    retained: bool = False


def retry_until_stopped(
    action: Callable[[], object],
    what: str,
    stop: threading.Event,
    errors: tuple[type[BaseException], ...],
    *,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
    attempts: int | None = None,
) -> bool:
    """Run ``action`` until it succeeds (True), or until ``stop`` is set or ``attempts`` ran out (False).

    Backoff doubles up to ``max_delay`` with ±25 % jitter, so that replicas which failed together do
    not retry in lockstep. Errors not in ``errors`` propagate: they mean "retrying will not help".
    """
    delay = first_delay
    tries = 0
    while True:
        try:
            action()
            return True
        except errors as err:
            tries += 1
            if attempts is not None and tries >= attempts:
                log.warning("%s unavailable (%s) after %d attempts", what, err, tries)
                return False
            wait = delay * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not cryptography
            log.warning("%s unavailable (%s); retrying in %.1fs, nothing acknowledged", what, err, wait)
            if stop.wait(wait):
                return False
            delay = min(delay * 2, max_delay)


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
        batch_bytes: int | None = None,
        batch_wait_s: float = 0.05,
        pipeline: int = 1,
        mqtt5: bool = False,
        receive_maximum: int | None = None,
    ) -> None:
        """``pipeline`` > 1 calls ``handle`` from that many threads at once: it must be thread-safe.

        ``mqtt5`` connects with MQTT 5 (needed for ``$share/...`` subscriptions), a persistent session
        (clean start off, session expiry) and ``receive_maximum`` as the broker's in-flight window.
        """
        self._name, self._topics, self._handle, self._stop = name, list(topics), handle, stop
        self._idle = idle  # runs in the dispatcher thread between batches (timers), never concurrently
        self._settings, self._batch_messages = settings, batch_messages
        self._batch_bytes, self._batch_wait_s = batch_bytes, batch_wait_s
        self._pipeline, self._mqtt5 = max(1, pipeline), mqtt5
        self._receive_maximum = receive_maximum
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._connection = 0  # incremented by each successful CONNACK (paho's network thread)
        self._client = consumer_client(client_id, settings, mqtt5=mqtt5)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = log_disconnect(name)

    @property
    def queue_depth(self) -> int:
        """Messages received but not yet handed to the handler."""
        return self._queue.qsize()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused %s: %s", self._name, reason)
            return
        self._connection += 1
        for topic in self._topics:
            client.subscribe(topic, qos=1)
        log.info("%s subscribed to %s", self._name, ", ".join(self._topics))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        inbound = Inbound(msg.mid, msg.qos, msg.topic, bytes(msg.payload), self._connection, msg.retain)
        try:
            self._queue.put_nowait(inbound)  # the common case, without put()'s timed wait
            return
        except queue.Full:
            pass
        while not self._stop.is_set():
            try:
                self._queue.put(inbound, timeout=0.5)
                return
            except queue.Full:
                continue  # backpressure: paho stops reading the socket while we wait

    def _next_batch(self) -> list[Inbound]:
        try:
            batch = [self._queue.get(timeout=0.5)]
        except queue.Empty:
            return []
        size = len(batch[0].payload)
        limit = self._batch_bytes
        deadline = time.monotonic() + self._batch_wait_s
        while len(batch) < self._batch_messages and (limit is None or size < limit):
            try:
                msg = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            batch.append(msg)
            size += len(msg.payload)
        return batch

    def _ack(self, batch: list[Inbound]) -> None:
        current = self._connection
        stale = 0
        mids = []
        for msg in batch:
            if msg.qos == 0:
                continue
            if msg.connection != current:
                stale += 1  # the broker redelivers it on this connection; that copy gets the ack
                continue
            mids.append(msg.mid)  # QoS 1: the consumer subscribes at QoS 1 only
        self._client.ack_many(mids)
        if stale:
            log.info(
                "%s: %d stored messages arrived on an earlier connection; acking their redeliveries",
                self._name,
                stale,
            )

    def _connect(self) -> None:
        s = self._settings
        if self._mqtt5:
            self._client.connect_async(
                s.mqtt_host,
                s.mqtt_port,
                keepalive=30,
                clean_start=False,
                properties=v5_connect_properties(SESSION_EXPIRY_S, self._receive_maximum),
            )
        else:
            self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=30)

    def run(self) -> None:
        self._connect()
        self._client.loop_start()
        try:
            if self._pipeline == 1:
                self._run_serial()
            else:
                self._run_pipelined()
        finally:
            shut_down(self._client)

    def _run_serial(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch and self._handle(batch):
                self._ack(batch)
            if self._idle is not None:
                self._idle()

    def _run_pipelined(self) -> None:
        pending: collections.deque[tuple[list[Inbound], Future[bool]]] = collections.deque()
        failed = False
        with ThreadPoolExecutor(self._pipeline, thread_name_prefix=f"{self._name}-batch") as pool:
            while not self._stop.is_set() and not failed:
                # Ack completed batches from the head only: PUBACKs in the order PUBLISHes came.
                while pending and pending[0][1].done():
                    batch, future = pending.popleft()
                    if not future.result():
                        failed = True  # stopped before stored: ack neither it nor anything after
                        break
                    self._ack(batch)
                if failed:
                    break
                # Keep ``pipeline`` batches *running*: finished ones waiting behind a slower, older batch
                # for their acks do not count, or one slow write would idle the rest (bounded: 4x).
                running = [future for _, future in pending if not future.done()]
                if len(running) >= self._pipeline or len(pending) >= 4 * self._pipeline:
                    wait(running or [pending[0][1]], timeout=0.5, return_when=FIRST_COMPLETED)
                    continue
                batch = self._next_batch()
                if batch:
                    pending.append((batch, pool.submit(self._handle, batch)))
                if self._idle is not None:
                    self._idle()
            # Stopping: let running handlers finish (they see the stop event), ack what they stored.
            for batch, future in pending:
                if failed or not future.result():
                    failed = True
                    continue
                self._ack(batch)
