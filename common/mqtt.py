"""The one paho-mqtt client builder: gateways (edge) and server consumers (ingest, alerts) alike.

Every client has a fixed id and a persistent session, so the broker keeps what it has not delivered
across a network cut or a restart; TLS (a CA bundle, optionally a client certificate) and a
username/password are set the same way for a gateway in a pump room and for a service in the rack.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.bufferedmqtt import BufferedClient
from common.settings import MqttSettings, TlsFiles

log = logging.getLogger(__name__)

# MQTT 5 persistent session: the broker keeps an offline consumer's messages this long (7 days).
SESSION_EXPIRY_S = 7 * 24 * 3600


def build_client(
    client_id: str,
    *,
    username: str | None,
    password: str | None,
    tls: TlsFiles | None = None,
    max_inflight: int,
    max_queued: int,
    reconnect_s: tuple[float, float],
    mqtt5: bool = False,
    manual_ack: bool = False,
    will: tuple[str, bytes] | None = None,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A configured, not yet connected client with a persistent session.

    MQTT 3.1.1 asks for the session with ``clean_session=False``; MQTT 5 at connect time (clean start
    off plus a session expiry, :func:`v5_connect_properties`). ``will`` is published retained at QoS 1
    when the connection drops without a DISCONNECT.
    """
    if mqtt5:
        client = client_class(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
        )
    else:
        client = client_class(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=manual_ack
        )
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(max_queued)
    # paho types the delays as int but computes with them; fractional seconds work (and jitter needs them).
    cast(Any, client).reconnect_delay_set(*reconnect_s)
    if username:
        client.username_pw_set(username, password)
    if tls is not None and tls.enabled:
        client.tls_set(ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def consumer_client(
    client_id: str, settings: MqttSettings, *, max_queued: int = 10_000, mqtt5: bool = False
) -> BufferedClient:
    """A QoS 1 consumer with a persistent session that acknowledges only when told to.

    ``manual_ack`` makes paho send PUBACK when we ack (``ack_many``) after the database accepted the
    message, not before ``on_message`` returns (its default); with ``clean_session=False`` (MQTT 5:
    clean start off plus a session expiry, see :func:`v5_connect_properties`) and a fixed client id
    the broker keeps what we have not acknowledged and redelivers it after a crash.
    """
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    client = build_client(
        client_id,
        username=settings.mqtt_username,
        password=password,
        tls=settings.mqtt_tls(),
        max_inflight=100,
        max_queued=max_queued,
        reconnect_s=(1, 30),
        mqtt5=mqtt5,
        manual_ack=True,
        client_class=BufferedClient,
    )
    return cast(BufferedClient, client)


def publisher_client(purpose: str, settings: MqttSettings, *, max_queued: int) -> mqtt.Client:
    """An MQTT 5 client for a server-side publisher of retained messages (desired configs, versions),
    not yet connected: set its callbacks, then ``connect_async`` and ``loop_start``. Its id is its own
    per process (``yiwang-<purpose>-<host>-<pid>``): several API workers may publish the same
    retained messages."""
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    return build_client(
        f"yiwang-{purpose}-{socket.gethostname()[:32]}-{os.getpid()}",
        username=settings.mqtt_username,
        password=password,
        tls=settings.mqtt_tls(),
        max_inflight=100,
        max_queued=max_queued,
        reconnect_s=(1, 30),
        mqtt5=True,
    )


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


def shut_down(client: mqtt.Client) -> None:
    """Disconnect, stop the network thread and close every socket the client holds.

    paho closes its wake-up socket pair only in ``Client.__del__``. A client whose callbacks are bound
    methods of its owner sits in a reference cycle, so the collector finalises it, in no set order
    with those sockets, which may then be found unclosed (a ResourceWarning at a random later moment).
    Closing them here leaves nothing to the collector (``_reset_sockets``: pinned paho 2.2.0).
    """
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()  # private: see the docstring
