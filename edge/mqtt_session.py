"""The gateway's MQTT session: its options, its reconnect backoff, and its client from the one builder.

Fixed client id and a persistent session (``clean_session=False``), so the broker keeps the session
across a network cut; QoS 1 with a bounded in-flight window; last will ``{"online": false}``
(retained); TLS with a CA file and optionally a client certificate; per-gateway username/password.

Reconnects use exponential backoff with **full jitter**: paho's own backoff is deterministic, so a
cell tower coming back would have every gateway of a district reconnect in the same second. Before
each retry the next delay is drawn uniformly from [min, min·2^attempt] (capped) and handed to paho.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, cast

import paho.mqtt.client as mqtt

from common.mqtt import build_client
from common.settings import TlsFiles

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    max_inflight: int = 20
    max_queued: int = 40
    """Spooled messages handed to paho at once; the rest waits in the spool, not in memory."""
    reconnect_min_s: float = 1
    reconnect_max_s: float = 30
    max_readings_per_message: int = 500
    drain_per_s: int | None = None
    """Backlog readings per second after an outage (None: as fast as the broker acknowledges)."""
    tls_ca: str | None = None
    """CA bundle path; when set the connection uses TLS (per-gateway credentials travel encrypted)."""
    tls_cert: str | None = None
    """Client certificate (PEM) for brokers that authenticate gateways by certificate."""
    tls_key: str | None = None


class Backoff:
    """Full-jitter exponential backoff; ``reset`` after a successful connect."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s, self.max_s = min_s, max_s
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.min_s * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 32)
        return self._rng.uniform(self.min_s, max(self.min_s, ceiling))

    def reset(self) -> None:
        self.attempt = 0


def make_client(client_id: str, options: MqttOptions, will_topic: str, will_payload: bytes) -> mqtt.Client:
    """A configured (not yet connected) paho client with a persistent session and its last will."""
    o = options
    client = build_client(
        client_id,
        username=o.username,
        password=o.password,
        tls=TlsFiles(ca=o.tls_ca, cert=o.tls_cert, key=o.tls_key),
        max_inflight=o.max_inflight,
        # Headroom above our own window for the retained state/devices messages of a connect.
        max_queued=o.max_queued + 8,
        reconnect_s=(o.reconnect_min_s, o.reconnect_max_s),
        will=(will_topic, will_payload),
    )
    client.enable_logger(logging.getLogger(f"{__name__}.paho"))
    return client


def schedule_retry(client: mqtt.Client, backoff: Backoff, what: str) -> None:
    """Give paho the next jittered delay (paho resets its doubling when the delay is set)."""
    delay = backoff.next_delay()
    cast(Any, client).reconnect_delay_set(delay, delay)
    log.debug("%s: next reconnect attempt in %.1fs", what, delay)
