"""MQTT publisher of one gateway: spool first, publish at QoS 1, delete on PUBACK (ARCHITECTURE §5).

Flow: a batch of readings or events becomes a contract message whose ``seq`` is allocated by the spool
in the same transaction that stores it; then the publisher hands spooled records to paho, oldest
first, keeping at most ``max_queued`` of them in paho's memory (paho itself sends ``max_inflight`` at a
time). The spool, not paho, holds any backlog, so an outage costs disk, not RAM. A PUBACK deletes the
record. Records handed to paho before a disconnect are resent by paho on reconnect (with the DUP flag);
everything still only in the spool — including all of it after an agent restart — is handed over
oldest first as acks free the window. Duplicates are possible and harmless: ingest drops a repeated
seq.

Retained ``state`` (birth, with spool depth) and ``devices`` are republished on every connect, because a
broker that restarted without persistence forgets retained messages; the last will is
``{"online": false}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.messages import (
    MAX_PAYLOAD_BYTES,
    DeviceEntry,
    DevicesMessage,
    Event,
    EventMessage,
    ModemState,
    Reading,
    SpoolState,
    StateMessage,
    TelemetryMessage,
)
from contract.topics import Topic, TopicKind
from edge.spool import Appended, Spool

log = logging.getLogger(__name__)

try:
    AGENT_VERSION = version("yiwang")
except PackageNotFoundError:  # running from a source tree that was never installed
    AGENT_VERSION = "0.0.0+unknown"

_MAX_SEQ = 2**63 - 1
_Batch = TelemetryMessage | EventMessage
T = TypeVar("T", Reading, Event)


def _telemetry(seq: int, readings: list[Reading]) -> _Batch:
    return TelemetryMessage(seq=seq, readings=readings)


def _events(seq: int, events: list[Event]) -> _Batch:
    return EventMessage(seq=seq, events=events)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    max_inflight: int = 20
    max_queued: int = 200
    """Spooled records handed to paho at once; the rest waits in the spool, not in memory."""
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    max_readings_per_message: int = 500
    tls_ca: str | None = None
    """CA bundle path; when set the connection uses TLS (per-gateway credentials travel encrypted)."""


class GatewayPublisher:
    """Publishes one gateway's telemetry and events through its spool; never raises on broker loss."""

    def __init__(
        self,
        community: str,
        gateway: str,
        spool: Spool,
        devices: Sequence[DeviceEntry],
        options: MqttOptions | None = None,
        *,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        self.community = community
        self.gateway = gateway
        self.options = options or MqttOptions()
        self.spool = spool
        self._devices = list(devices)
        self._clock = clock
        self.client_id = f"yiwang-edge-{community}-{gateway}"
        self._topics = {kind: Topic(community, gateway, kind).path for kind in TopicKind}
        self._lock = threading.Lock()  # guards the mid bookkeeping below; never held while calling paho
        self._pump_lock = threading.Lock()  # one pumper at a time, so records are handed over in order
        self._by_mid: dict[int, int | None] = {}  # paho mid -> spool id (None: retained state/devices)
        self._early_acks: set[int] = set()  # PUBACKs that arrived before publish() returned the mid
        self._outstanding = 0  # spooled records handed to paho and not yet acknowledged
        self._handed_upto = 0  # highest spool id handed to paho by this process
        self._stopping = False
        self._modem: ModemState | None = None
        self._on_config: Callable[[bytes], None] | None = None

        o = self.options
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False)
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.max_inflight_messages_set(o.max_inflight)
        # Headroom above our own window for the retained state/devices messages of a connect.
        client.max_queued_messages_set(o.max_queued + 8)
        client.reconnect_delay_set(o.reconnect_min_s, o.reconnect_max_s)
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        if o.tls_ca is not None:
            client.tls_set(ca_certs=o.tls_ca)
        offline = StateMessage(online=False).model_dump_json(exclude_unset=True)
        client.will_set(self._topics[TopicKind.STATE], offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    @property
    def outstanding(self) -> int:
        """Spooled records handed to MQTT and not yet acknowledged."""
        with self._lock:
            return self._outstanding

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        log.info(
            "gateway %s/%s: connecting to %s:%s as %s",
            self.community,
            self.gateway,
            self.options.host,
            self.options.port,
            self.client_id,
        )
        self._client.connect_async(self.options.host, self.options.port, keepalive=self.options.keepalive_s)
        self._client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish a retained offline state (when connected), then disconnect cleanly."""
        self._stopping = True
        if self.connected:
            info = self._send(TopicKind.STATE, self._state_payload(online=False), None)
            if info is not None and info.rc == mqtt.MQTT_ERR_SUCCESS:
                try:
                    # Mosquitto acks in order, so this also lets earlier in-flight records get their PUBACK.
                    info.wait_for_publish(timeout_s)
                except (RuntimeError, ValueError) as err:
                    log.warning("gateway %s: offline state not acknowledged: %s", self.gateway, err)
        # paho logs the closed socket of a deliberate disconnect as an error; that is noise here.
        self._client.disable_logger()
        self._client.disconnect()
        self._client.loop_stop()
        log.info(
            "gateway %s/%s: stopped, %d message(s) left in the spool",
            self.community,
            self.gateway,
            self.spool.depth(),
        )

    def publish_readings(self, readings: Sequence[Reading]) -> list[Appended]:
        """Spool readings as telemetry messages (many per message), then publish what the window allows.

        Raises ``SpoolFullError`` when the spool refuses them; nothing is lost silently.
        """
        size = self.options.max_readings_per_message
        appended: list[Appended] = []
        for i in range(0, len(readings), size):
            appended += self._spool(TopicKind.TELEMETRY, list(readings[i : i + size]), _telemetry)
        self.pump()
        return appended

    def publish_events(self, events: Sequence[Event]) -> list[Appended]:
        """Spool events as one event message (split if too large), then publish; may raise SpoolFullError."""
        appended = self._spool(TopicKind.EVENT, list(events), _events) if events else []
        self.pump()
        return appended

    def _spool(
        self, kind: TopicKind, items: list[T], make: Callable[[int, list[T]], _Batch]
    ) -> list[Appended]:
        def build(seq: int) -> bytes:
            return make(seq, items).model_dump_json().encode()

        # A batch whose payload would exceed the contract's limit is split rather than rejected by ingest.
        if len(items) > 1 and len(build(_MAX_SEQ)) > MAX_PAYLOAD_BYTES:
            half = len(items) // 2
            return self._spool(kind, items[:half], make) + self._spool(kind, items[half:], make)
        return [self.spool.append(kind.value, build)]

    def pump(self) -> int:
        """Hand spooled records to paho, oldest first, while the window has room; returns how many."""
        if not self.connected or not self._pump_lock.acquire(blocking=False):
            # Another thread is pumping and will see the same records, or on_connect has not run yet.
            return 0
        handed = 0
        try:
            while True:
                with self._lock:
                    free, after = self.options.max_queued - self._outstanding, self._handed_upto
                records = self.spool.pending(free, after_id=after) if free > 0 else []
                if not records:
                    return handed
                for record in records:
                    if self._send(TopicKind(record.kind), record.payload, record.id) is None:
                        return handed
                    handed += 1
        finally:
            self._pump_lock.release()

    def publish_state(self) -> None:
        """Refresh the retained state (spool depth and age) between connects."""
        if self.connected:
            self._send(TopicKind.STATE, self._state_payload(online=True), None)

    def set_modem_state(self, modem: ModemState | None) -> None:
        """Link quality to carry in the next retained state (the edge agent's modem source)."""
        self._modem = modem

    def set_devices(self, devices: Sequence[DeviceEntry]) -> None:
        """Replace the device list (after a config change) and republish the retained ``devices``."""
        self._devices = list(devices)
        if self.connected:
            self._send_devices()

    def on_config(self, handler: Callable[[bytes], None]) -> None:
        """Subscribe to this gateway's retained ``config`` topic; ``handler`` runs on paho's thread.

        Set before :meth:`start`; the subscription is renewed on every connect.
        """
        self._on_config = handler

    def _send_devices(self) -> None:
        devices = DevicesMessage(ts=self._clock(), devices=self._devices)
        self._send(TopicKind.DEVICES, devices.model_dump_json().encode(), None)

    def _state_payload(self, *, online: bool) -> bytes:
        state = StateMessage(
            online=online,
            ts=self._clock(),
            agent=AGENT_VERSION,
            spool=SpoolState(depth=self.spool.depth(), oldest_ts=self.spool.oldest_ts()),
            **({"modem": self._modem} if self._modem is not None and online else {}),
        )
        return state.model_dump_json(exclude_unset=True).encode()

    def _send(self, kind: TopicKind, payload: bytes, record_id: int | None) -> mqtt.MQTTMessageInfo | None:
        """Publish at QoS 1 and remember which spool record the mid belongs to; None if refused."""
        topic = self._topics[kind]
        try:
            info = self._client.publish(topic, payload, qos=1, retain=kind.retained)
        except (ValueError, OSError) as err:
            log.error("gateway %s: publish to %s failed: %s", self.gateway, topic, err)
            return None
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            log.warning("gateway %s: paho queue full, %s waits in the spool", self.gateway, topic)
            return None
        # rc NO_CONN is fine: paho keeps the message and sends it after the reconnect.
        acked_early = False
        with self._lock:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                acked_early = True
            else:
                self._by_mid[info.mid] = record_id
                if record_id is not None:
                    self._outstanding += 1
            if record_id is not None:
                self._handed_upto = max(self._handed_upto, record_id)
        if acked_early and record_id is not None:
            self.spool.ack(record_id)
        return info

    # paho callbacks run on its network thread; an exception there would kill the loop, so none escape.

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                log.error(
                    "gateway %s/%s: broker %s:%s refused the connection: %s",
                    self.community,
                    self.gateway,
                    self.options.host,
                    self.options.port,
                    reason,
                )
                return
            log.info(
                "gateway %s/%s: connected to %s:%s (session present: %s, spool depth %d)",
                self.community,
                self.gateway,
                self.options.host,
                self.options.port,
                flags.session_present,
                self.spool.depth(),
            )
            self._send(TopicKind.STATE, self._state_payload(online=True), None)
            self._send_devices()
            if self._on_config is not None:
                client.subscribe(self._topics[TopicKind.CONFIG], qos=1)
        except Exception:
            log.exception("gateway %s: on_connect failed", self.gateway)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if self._on_config is not None and msg.topic == self._topics[TopicKind.CONFIG]:
                self._on_config(bytes(msg.payload))
        except Exception:
            log.exception("gateway %s: config handler failed for %s", self.gateway, msg.topic)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        log.log(
            logging.INFO if self._stopping else logging.WARNING,
            "gateway %s/%s: disconnected from %s:%s (%s); %d unacknowledged, spool depth %d",
            self.community,
            self.gateway,
            self.options.host,
            self.options.port,
            reason,
            self.outstanding,
            self.spool.depth(),
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning(
            "gateway %s/%s: cannot reach broker %s:%s; retrying with backoff",
            self.community,
            self.gateway,
            self.options.host,
            self.options.port,
        )

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        try:
            with self._lock:
                if mid not in self._by_mid:
                    self._early_acks.add(mid)
                    return
                record_id = self._by_mid.pop(mid)
                if record_id is not None:
                    self._outstanding -= 1
            if record_id is None:
                return
            if reason.is_failure:
                # Only MQTT 5 brokers refuse a PUBLISH in its PUBACK; keep the record for a later retry.
                log.error("gateway %s: broker refused spool record %d: %s", self.gateway, record_id, reason)
                return
            self.spool.ack(record_id)
            # A slot in the window is free: keep a backlog draining at network speed, not tick speed.
            self.pump()
        except Exception:
            log.exception("gateway %s: on_publish failed for mid %d", self.gateway, mid)
