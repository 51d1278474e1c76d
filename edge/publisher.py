"""MQTT publisher of one gateway: spool first, publish at QoS 1, delete on PUBACK (ARCHITECTURE §5).

Flow: readings and events are appended to the spool (:mod:`edge.spool`), then :meth:`pump` claims
messages from it — events first, live telemetry next, then backlog — and hands them to paho,
keeping at most ``max_queued`` in paho's memory (paho sends ``max_inflight`` at a time). Of those,
at most ``backlog_window`` are backlog: paho sends in hand-over order, so live data and events find
at most that many backlog messages ahead of them, and each PUBACK lets the next backlog message go
(a drain clocked by the broker, optionally capped at ``drain_per_s`` readings a second). The spool,
not paho, holds any backlog, so an outage costs disk, not RAM. A PUBACK deletes the message's
chunks. Messages handed to paho before a disconnect are resent by paho on reconnect
(DUP flag); messages claimed by a previous run (killed before their PUBACK) are rebuilt with the
same seq and sent first. Duplicates are possible and harmless: ingest drops a repeated seq.

Retained ``state`` (birth, with spool depth, age and drop counts) and ``devices`` are republished on
every connect, because a broker that restarted without persistence forgets retained messages; the
last will is ``{"online": false}``, a clean stop says ``{"online": false, "reason": "stopped"}``.
Session details: :mod:`edge.mqtt_session`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import paho.mqtt.client as mqtt

from common.mqtt import shut_down
from contract.messages import (
    CameraState,
    ConfigRefusal,
    DeviceEntry,
    DevicesMessage,
    Event,
    ModemState,
    Reading,
    SpoolState,
    StateMessage,
    UpgradeReport,
)
from contract.topics import Topic, TopicKind
from edge.mqtt_session import Backoff, MqttOptions, Outage, make_client, schedule_retry
from edge.spool import Spool

__all__ = ["AGENT_VERSION", "GatewayPublisher", "MqttOptions"]

log = logging.getLogger(__name__)

try:
    AGENT_VERSION = version("yiwang")
except PackageNotFoundError:  # running from a source tree that was never installed
    AGENT_VERSION = "0.0.0+unknown"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


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
        self._pump_lock = threading.Lock()  # one pumper at a time, so claims are handed over in order
        self._by_mid: dict[int, int | None] = {}  # paho mid -> seq (None: retained state/devices)
        self._early_acks: set[int] = set()  # PUBACKs that arrived before publish() returned the mid
        self._in_flight: set[int] = set()  # seqs handed to paho by this process and not yet acked
        self._backlog_in_flight: set[int] = set()  # the backlog part of _in_flight
        self._backlog_window = min(self.options.backlog_window, max(1, self.options.max_queued // 2))
        self._stopping = False
        self._modem: ModemState | None = None
        self._camera_health: Callable[[], dict[str, Any]] | None = None
        self._on_config: Callable[[bytes], None] | None = None
        self._on_version: Callable[[bytes], None] | None = None
        self._upgrade: UpgradeReport | None = None
        self._config_applied: str | None = None
        self._config_refused: ConfigRefusal | None = None
        self._backoff = Backoff(self.options.reconnect_min_s, self.options.reconnect_max_s)
        self.outage = Outage(f"gateway {community}/{gateway}", f"{self.options.host}:{self.options.port}")
        rate = self.options.drain_per_s
        self._tokens = float(rate or 0)
        self._refilled = time.monotonic()
        self.published = 0  # messages acknowledged by the broker (for /metrics)

        offline = StateMessage(online=False).model_dump_json(exclude_unset=True).encode()
        client = make_client(self.client_id, self.options, self._topics[TopicKind.STATE], offline)
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
        """Spooled messages handed to MQTT and not yet acknowledged."""
        with self._lock:
            return len(self._in_flight)

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

    def stop(self, timeout_s: float = 5.0, *, planned: bool = True) -> None:
        """Publish a retained offline state (when connected), then disconnect cleanly.

        A planned stop says ``"reason": "stopped"``, so the alert service treats it as maintenance,
        not as an outage. A stop forced by a failure (``planned=False``) says no reason, like the last
        will the broker sends when power or link is lost: people should look at it.
        """
        self._stopping = True
        if self.connected:
            info = self._send(TopicKind.STATE, self._state_payload(online=False, stopped=planned), None)
            if info is not None and info.rc == mqtt.MQTT_ERR_SUCCESS:
                try:
                    # Mosquitto acks in order, so this also lets earlier in-flight records get their PUBACK.
                    info.wait_for_publish(timeout_s)
                except (RuntimeError, ValueError) as err:
                    log.warning("gateway %s: offline state not acknowledged: %s", self.gateway, err)
        # paho logs the closed socket of a deliberate disconnect as an error; that is noise here.
        self._client.on_log = None
        shut_down(self._client)
        log.info(
            "gateway %s/%s: stopped, %d message(s) left in the spool",
            self.community,
            self.gateway,
            self.spool.depth(),
        )

    def publish_readings(self, readings: Sequence[Reading]) -> int:
        """Spool readings, then publish what the window allows; returns how many were spooled.

        Raises ``SpoolFullError`` when the spool refuses them (counted as refused, never silent).
        """
        stored = self.spool.append_readings(readings)
        self.outage.spooled(stored)
        self.pump()
        return stored

    def publish_events(self, events: Sequence[Event]) -> int:
        """Spool events (kept over telemetry when the spool is full), then publish; see publish_readings."""
        stored = self.spool.append_events(events)
        self.outage.spooled(stored)
        self.pump()
        return stored

    def pump(self) -> int:
        """Hand spooled messages to paho while the window has room; returns how many."""
        if not self.connected:
            return 0
        if self.outage.draining:
            self.outage.drained(self.spool.oldest_ts())
        if not self._pump_lock.acquire(blocking=False):
            # Another thread is pumping and will see the same records, or on_connect has not run yet.
            return 0
        handed = 0
        try:
            while True:
                with self._lock:
                    free = self.options.max_queued - len(self._in_flight)
                    backlog_free = self._backlog_window - len(self._backlog_in_flight)
                    in_flight = set(self._in_flight)
                if free <= 0:
                    return handed
                # Claimed earlier but not in paho's hands (a previous run, or a refused publish): first.
                batch = self.spool.unacked(in_flight, free)
                if not batch:
                    batch = self.spool.claim(free, self._drain_budget(), max(0, backlog_free))
                    self._tokens -= sum(m.items for m in batch if m.backlog)
                if not batch:
                    return handed
                for message in batch:
                    if self._send(message.kind, message.payload, message.seq, message.backlog) is None:
                        return handed
                    handed += 1
        finally:
            self._pump_lock.release()

    def _drain_budget(self) -> int | None:
        rate = self.options.drain_per_s
        if rate is None:
            return None
        now = time.monotonic()
        # A one-second bucket: the backlog drains at the configured rate, bursts at most a second's worth.
        self._tokens = min(float(rate), self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        return max(0, int(self._tokens))

    def publish_state(self) -> None:
        """Refresh the retained state (spool depth and age) between connects."""
        if self.connected:
            self._send(TopicKind.STATE, self._state_payload(online=True), None)

    def set_camera_health(self, health: Callable[[], dict[str, Any]] | None) -> None:
        """Where the next retained states read per-camera health (cameras analysed on this gateway)."""
        self._camera_health = health

    def set_modem_state(self, modem: ModemState | None) -> None:
        """Link quality to carry in the next retained state (the edge agent's modem source)."""
        self._modem = modem

    def set_config_state(self, applied: str | None, refused: ConfigRefusal | None) -> None:
        """The remote config running and the last one refused; the retained state says so at once,
        so the registry sees the outcome without waiting for the next state interval."""
        self._config_applied, self._config_refused = applied, refused
        self.publish_state()

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

    def on_desired_version(self, handler: Callable[[bytes], None]) -> None:
        """Subscribe to this gateway's retained ``version`` topic (the agent version it should run)."""
        self._on_version = handler

    def set_upgrade_state(self, report: UpgradeReport | None) -> None:
        """The last upgrade attempt, carried in every retained state from now on; sent at once."""
        self._upgrade = report
        self.publish_state()

    def _send_devices(self) -> None:
        devices = DevicesMessage(ts=self._clock(), devices=self._devices)
        self._send(TopicKind.DEVICES, devices.model_dump_json().encode(), None)

    def _state_payload(self, *, online: bool, stopped: bool = False) -> bytes:
        stats = self.spool.stats()
        # Only what is known goes in: exclude_unset below keeps absent parts absent, not null.
        optional: dict[str, Any] = {}
        if online and self._modem is not None:
            optional["modem"] = self._modem
        if online and self._camera_health is not None:
            optional["cameras"] = self._cameras()
        if stopped:
            optional["reason"] = "stopped"
        if self._config_applied is not None:
            optional["config_applied"] = self._config_applied
        if self._config_refused is not None:
            optional["config_refused"] = self._config_refused
        if self._upgrade is not None:
            optional["upgrade"] = self._upgrade
        state = StateMessage(
            online=online,
            ts=self._clock(),
            agent=AGENT_VERSION,
            spool=SpoolState(
                depth=stats.depth,
                oldest_ts=stats.oldest_ts,
                bytes=stats.bytes,
                dropped=sum(stats.dropped.values()),
            ),
            **optional,
        )
        return state.model_dump_json(exclude_unset=True).encode()

    def _cameras(self) -> dict[str, CameraState]:
        assert self._camera_health is not None
        return {camera: CameraState(**health) for camera, health in self._camera_health().items()}

    def _send(
        self, kind: TopicKind, payload: bytes, seq: int | None, backlog: bool = False
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish at QoS 1 and remember which spooled message the mid belongs to; None if refused."""
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
                self._by_mid[info.mid] = seq
                if seq is not None:
                    self._in_flight.add(seq)
                    if backlog:
                        self._backlog_in_flight.add(seq)
        if acked_early and seq is not None:
            self.spool.ack(seq)
            self.published += 1
        return info

    # paho callbacks run on its network thread; an exception there would kill the loop, so none escape.

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                # Credentials or authorisation: a person has to act, but once per outage is enough.
                log.log(
                    logging.ERROR if self.outage.refused(str(reason)) else logging.DEBUG,
                    "gateway %s/%s: broker %s:%s refused the connection: %s",
                    self.community,
                    self.gateway,
                    self.options.host,
                    self.options.port,
                    reason,
                )
                return
            self._backoff.reset()
            depth = self.spool.depth()
            # The end of an outage is told once, by the outage log when its backlog is delivered.
            ended = self.outage.back(self._clock(), depth)
            log.log(
                logging.DEBUG if ended else logging.INFO,
                "gateway %s/%s: connected to %s:%s (session present: %s, spool depth %d)",
                self.community,
                self.gateway,
                self.options.host,
                self.options.port,
                flags.session_present,
                depth,
            )
            self._send(TopicKind.STATE, self._state_payload(online=True), None)
            self._send_devices()
            if self._on_config is not None:
                client.subscribe(self._topics[TopicKind.CONFIG], qos=1)
            if self._on_version is not None:
                client.subscribe(self._topics[TopicKind.VERSION], qos=1)
        except Exception:
            log.exception("gateway %s: on_connect failed", self.gateway)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if self._on_config is not None and msg.topic == self._topics[TopicKind.CONFIG]:
                self._on_config(bytes(msg.payload))
            elif self._on_version is not None and msg.topic == self._topics[TopicKind.VERSION]:
                self._on_version(bytes(msg.payload))
        except Exception:
            log.exception("gateway %s: config handler failed for %s", self.gateway, msg.topic)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if self._stopping:
                log.info(
                    "gateway %s/%s: disconnected from %s:%s; %d unacknowledged, spool depth %d",
                    self.community,
                    self.gateway,
                    self.options.host,
                    self.options.port,
                    self.outstanding,
                    self.spool.depth(),
                )
                return
            schedule_retry(client, self._backoff, f"gateway {self.community}/{self.gateway}")
            self.outage.lost(f"disconnected: {reason}", self.spool.depth())
        except Exception:
            log.exception("gateway %s: on_disconnect failed", self.gateway)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        try:
            schedule_retry(client, self._backoff, f"gateway {self.community}/{self.gateway}")
            self.outage.lost("connect failed", self.spool.depth())
        except Exception:
            log.exception("gateway %s: on_connect_fail failed", self.gateway)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        try:
            with self._lock:
                if mid not in self._by_mid:
                    self._early_acks.add(mid)
                    return
                seq = self._by_mid.pop(mid)
            if seq is None:
                return
            if reason.is_failure:
                # Only MQTT 5 brokers refuse a PUBLISH in its PUBACK; the message stays for a later retry.
                log.error("gateway %s: broker refused message seq %d: %s", self.gateway, seq, reason)
            else:
                self.spool.ack(seq)
                self.published += 1
            # Only now: a pump that saw the seq neither in flight nor deleted would send it again.
            with self._lock:
                self._in_flight.discard(seq)
                self._backlog_in_flight.discard(seq)
            # A slot in the window is free: keep a backlog draining at network speed, not tick speed.
            self.pump()
        except Exception:
            log.exception("gateway %s: on_publish failed for mid %d", self.gateway, mid)
