"""The one client builder over TLS for a server consumer: the same CA and client certificate a gateway
uses, against a real Mosquitto TLS listener that requires a certificate."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from common.mqtt import consumer_client
from common.settings import MqttSettings
from tests.edge.test_tls import tls_broker  # noqa: F401 - the fixture: CA, server and client certificates
from yiwang.servers import MosquittoServer, unique_name

pytestmark = pytest.mark.integration


def _connects(settings: MqttSettings) -> bool:
    """Whether a consumer built from ``settings`` gets a CONNACK success and a message through."""
    client = consumer_client(unique_name("tls-consumer"), settings)
    got = threading.Event()
    client.on_message = lambda _c, _u, msg: got.set()
    client.on_connect = lambda c, _u, _f, reason, _p: (
        c.subscribe("tls/probe", qos=1) if not reason.is_failure else None
    )
    client.on_subscribe = lambda c, *_a: c.publish("tls/probe", b"x", qos=1)
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port)
    except OSError:
        return False  # the TLS handshake failed before MQTT began
    client.loop_start()
    try:
        return got.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_consumer_connects_over_tls_with_ca_and_client_certificate(
    tls_broker: tuple[MosquittoServer, int, Path],  # noqa: F811 - the imported fixture
) -> None:
    _broker, tls_port, certs = tls_broker
    settings = MqttSettings(
        mqtt_host="127.0.0.1",
        mqtt_port=tls_port,
        mqtt_tls_ca=certs / "ca.pem",
        mqtt_tls_cert=certs / "client.pem",
        mqtt_tls_key=certs / "client.key",
    )
    assert settings.mqtt_tls() is not None
    assert _connects(settings)


def test_without_tls_settings_the_tls_listener_is_not_reached(
    tls_broker: tuple[MosquittoServer, int, Path],  # noqa: F811 - the imported fixture
) -> None:
    _broker, tls_port, _certs = tls_broker
    settings = MqttSettings(mqtt_host="127.0.0.1", mqtt_port=tls_port)
    assert settings.mqtt_tls() is None
    assert not _connects(settings)
