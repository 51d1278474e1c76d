"""Publishes each gateway's desired agent version, retained at QoS 1, and keeps rollouts honest.

Every round (one a second, in a thread of its own, in the API process like the desired configs):
the active rollout is evaluated against the gateways' last states, so it stops by itself when a
gateway rolled back (:func:`registry.rollouts.evaluate`); then every desired version the broker has
not got from this connection goes to ``yiwang/v1/{community}/{gateway}/version``, retained, and a
withdrawn one is cleared (an empty retained message). After a reconnect all are published again, as
a broker restarted without persistence forgot them. Nothing connects while no gateway has a desired
version. The account needs the admin role (``broker.accounts``), as for ``config``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.mqtt import publisher_client, shut_down
from common.settings import MqttSettings
from contract.messages import DesiredVersionMessage
from contract.topics import Topic, TopicKind
from registry.rollout_models import ensure_tables
from registry.rollouts import GatewayKey, States, desired_versions, evaluate

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000


def payload(version: str, rollout: int | None) -> bytes:
    return DesiredVersionMessage(version=version, rollout=rollout).model_dump_json(exclude_none=True).encode()


class DesiredVersionPublisher:
    def __init__(
        self, db: Engine, settings: MqttSettings, states: Callable[[], States], *, poll_s: float = 1.0
    ) -> None:
        self._db = db
        self._settings = settings
        self._states = states
        self.poll_s = poll_s
        self._sent: dict[GatewayKey, bytes] = {}
        self._clear: set[GatewayKey] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self.error: str | None = None
        self.published = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="desired-versions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._client is not None:
            shut_down(self._client)

    def _run(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:  # a bug here must not end the publishing
                log.exception("desired versions: a round failed")
            if self._stop.wait(self.poll_s):
                return

    def sync(self) -> int:
        """One round: evaluate the rollout, publish what changed; how many messages went out."""
        try:
            ensure_tables(self._db)
            with Session(self._db) as session, session.begin():
                withdrawn = evaluate(session, self._states())
                wanted = {k: payload(r.version, r.rollout_id) for k, r in desired_versions(session).items()}
            self.error = None
        except SQLAlchemyError as err:
            self.error = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
            log.warning("desired versions: store unreadable: %s", self.error)
            return 0
        with self._lock:
            self._clear |= set(withdrawn) | (set(self._sent) - set(wanted))
            self._clear -= set(wanted)
        if not wanted and not self._clear:
            return 0
        client = self._connected_client()
        if not client.is_connected():
            return 0
        sent = 0
        for key in sorted(self._clear):
            if self._publish(client, key, b""):
                with self._lock:
                    self._clear.discard(key)
                    self._sent.pop(key, None)
                sent += 1
        for key, body in wanted.items():
            with self._lock:
                if self._sent.get(key) == body:
                    continue
            if not self._publish(client, key, body):
                break
            with self._lock:
                self._sent[key] = body
            sent += 1
            log.info("desired versions: %s/%s now %s", key[0], key[1], json.loads(body)["version"])
        self.published += sent
        return sent

    def _publish(self, client: mqtt.Client, key: GatewayKey, body: bytes) -> bool:
        topic = Topic(key[0], key[1], TopicKind.VERSION).path
        info = client.publish(topic, body, qos=1, retain=True)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _connected_client(self) -> mqtt.Client:
        if self._client is not None:
            return self._client
        client = publisher_client("desired-versions", self._settings, max_queued=MAX_QUEUED)
        client.on_connect = self._on_connect
        client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port)
        client.loop_start()
        self._client = client
        return client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.error = f"the broker refused the connection: {reason}"
            log.error("desired versions: %s", self.error)
            return
        with self._lock:
            self._sent.clear()  # publish them all again on this connection
