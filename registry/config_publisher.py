"""Publishes every managed gateway's desired config, retained at QoS 1, whenever the registry changes.

It follows the registry's version (the one-row poll every service uses, ``registry.live``) and the
definitions' revision (a stored sensor type ships with the configs of the gateways that use it) in a
thread of its own: when either moves it renders every gateway's desired config (``registry.desired``)
and publishes those whose hash changed to ``yiwang/v1/{community}/{gateway}/config``, retained, so a
gateway that is offline now gets the newest one when it connects. After every (re)connect it publishes
them all once more, because a broker restarted without persistence forgets retained messages; a
gateway that already runs a hash ignores it.

The broker account must be allowed to write ``config`` topics (the ``admin.<name>`` role of
``broker.accounts``). Nothing connects while the registry manages no gateway (no bus anywhere), so a
deployment that configures its gateways by file alone never opens this connection.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.mqtt import publisher_client, shut_down
from common.settings import MqttSettings
from contract.topics import Topic, TopicKind
from registry import definitions, version
from registry.desired import DesiredConfig, GatewayKey, render_all

log = logging.getLogger(__name__)

# Configs handed to paho and not yet acknowledged; beyond it the rest waits for the next round.
MAX_QUEUED = 10_000


class DesiredConfigPublisher:
    def __init__(self, db: Engine, settings: MqttSettings, *, poll_s: float = 1.0) -> None:
        definitions.create_schema(db)  # the configs carry stored profiles: the table must be there
        self._db = db
        self._settings = settings
        self.poll_s = poll_s
        self._desired: dict[GatewayKey, DesiredConfig] = {}
        self._sent: dict[GatewayKey, str] = {}  # hash handed to the broker by this connection
        self._in_flight: dict[int, GatewayKey] = {}  # paho mid -> gateway, until the broker's PUBACK
        self._early_refusals: dict[int, str] = {}  # refused before publish() returned its mid
        self._seen_version: tuple[int, int] | None = None  # (registry version, definitions revision)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._db_error: str | None = None
        self._broker_error: str | None = None
        self.published = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="desired-configs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._client is not None:
            shut_down(self._client)

    def status(self) -> dict[str, Any]:
        return {
            "managed_gateways": len(self._desired),
            "connected": bool(self._client is not None and self._client.is_connected()),
            "published": self.published,
            "error": self._db_error or self._broker_error,
        }

    def _run(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:  # a bug here must not end the publishing
                log.exception("desired configs: a round failed")
            if self._stop.wait(self.poll_s):
                return

    def sync(self) -> int:
        """One round: re-render when the registry moved, publish what the broker has not got; how many."""
        try:
            stored = (version.current(self._db), definitions.revision(self._db))
            if stored != self._seen_version:
                with Session(self._db) as session:
                    self._desired = render_all(session)
                self._seen_version = stored
            self._db_error = None
        except SQLAlchemyError as err:
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
            if reason != self._db_error:
                log.warning("desired configs: registry unreadable, keeping the last render: %s", reason)
            self._db_error = reason
        if not self._desired:
            return 0
        client = self._connected_client()
        if client is None or not client.is_connected():
            return 0
        return self._publish_changed(client)

    def _publish_changed(self, client: mqtt.Client) -> int:
        sent = 0
        for key, desired in self._desired.items():
            with self._lock:
                if self._sent.get(key) == desired.hash:
                    continue
            topic = Topic(desired.community, desired.gateway, TopicKind.CONFIG).path
            # Never hold our lock across publish(): paho calls on_publish under its own message lock.
            info = client.publish(topic, desired.payload(), qos=1, retain=True)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break  # queue full or connection lost: the rest goes next round
            with self._lock:
                self._sent[key] = desired.hash
                refused = self._early_refusals.pop(info.mid, None)
                if refused is None:
                    self._in_flight[info.mid] = key
            if refused is not None:
                self._refused(key, refused)
            sent += 1
            log.info("desired configs: %s/%s now %s", desired.community, desired.gateway, desired.hash[:16])
        self.published += sent
        return sent

    def _connected_client(self) -> mqtt.Client | None:
        if self._client is not None:
            return self._client
        client = publisher_client("desired-configs", self._settings, max_queued=MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port)
        client.loop_start()
        self._client = client
        return client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("desired configs: the broker refused the connection: %s", reason)
            return
        with self._lock:
            self._sent.clear()  # publish them all again on this connection
            self._in_flight.clear()  # a PUBACK of the last connection will not come
            self._early_refusals.clear()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        with self._lock:
            key = self._in_flight.pop(mid, None)
            if key is None:
                if reason.is_failure and len(self._early_refusals) < MAX_QUEUED:
                    self._early_refusals[mid] = str(reason)
                return
        if reason.is_failure:
            self._refused(key, str(reason))
        else:
            self._broker_error = None

    def _refused(self, key: GatewayKey, reason: str) -> None:
        # The account may not write config topics: retrying cannot help, a person must fix the account
        # (``broker.accounts``: the admin role). The next registry change or reconnect tries again.
        self._broker_error = f"the broker refused the config of {key[0]}/{key[1]}: {reason}"
        log.error("desired configs: %s", self._broker_error)
