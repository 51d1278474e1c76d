"""paho-mqtt client construction shared by the server-side consumers (ingest, alerts)."""

from __future__ import annotations

import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.bufferedmqtt import BufferedClient
from common.settings import MqttSettings

log = logging.getLogger(__name__)

# MQTT 5 persistent session: the broker keeps an offline consumer's messages this long (7 days).
SESSION_EXPIRY_S = 7 * 24 * 3600


def consumer_client(
    client_id: str, settings: MqttSettings, *, max_queued: int = 10_000, mqtt5: bool = False
) -> BufferedClient:
    """A QoS 1 consumer with a persistent session that acknowledges only when told to.

    ``manual_ack`` makes paho send PUBACK when we ack (``ack_many``) after the database accepted the
    message, not before ``on_message`` returns (its default); with ``clean_session=False`` (MQTT 5:
    clean start off plus a session expiry, see :func:`v5_connect_properties`) and a fixed client id
    the broker keeps what we have not acknowledged and redelivers it after a crash.
    """
    if mqtt5:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
    else:
        client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(max_queued)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)
    return client


def v5_connect_properties(session_expiry_s: int, receive_maximum: int | None = None) -> Properties:
    """CONNECT properties of a persistent MQTT 5 session; ``receive_maximum`` sizes the broker's
    window of unacknowledged messages to us (Mosquitto's ``max_inflight_messages`` for MQTT 3.1.1)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = min(max(1, receive_maximum), 65535)
    return props


def log_disconnect(name: str) -> Any:
    def on_disconnect(_c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        log.warning("%s disconnected from the broker (%s); paho reconnects with backoff", name, reason)

    return on_disconnect
