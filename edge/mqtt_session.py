"""The gateway's MQTT session: its options, its reconnect backoff, its outage log and its client.

Fixed client id and a persistent session (``clean_session=False``), so the broker keeps the session
across a network cut; QoS 1 with a bounded in-flight window; last will ``{"online": false}``
(retained); TLS with a CA file and optionally a client certificate; per-gateway username/password.

A broker outage is expected on a gateway, so it is told once: one WARNING when it starts, one INFO
when it is over (reconnected and the backlog of the outage delivered) with the counts; the retries
in between are DEBUG, and the retained state and ``/metrics`` carry the rest (see :class:`Outage`).
paho's own messages about the lost socket say the same thing again and are DEBUG as well.
"""

from __future__ import annotations

import logging
import random
import threading
import time
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
    backlog_window: int = 4
    """Backlog messages (up to ``max_readings_per_message`` readings each) handed to paho at once.

    paho sends in the order it is handed messages, so this is how many backlog messages a live reading
    or an event can find ahead of it. The drain is clocked by the broker's acknowledgements: a slow
    link drains slowly and still carries live data at once, a fast one drains at its own speed. At
    most half of ``max_queued`` (at least one), so live data always finds room.
    """
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 4
    """Cap of the jittered reconnect delay: the broker is back in use at most this long after it is."""
    max_readings_per_message: int = 500
    drain_per_s: int | None = None
    """Backlog readings per second after an outage (None: as fast as the broker acknowledges)."""
    tls_ca: str | None = None
    """CA bundle path; when set the connection uses TLS (per-gateway credentials travel encrypted)."""
    tls_cert: str | None = None
    """Client certificate (PEM) for brokers that authenticate gateways by certificate."""
    tls_key: str | None = None

    def __post_init__(self) -> None:
        if self.backlog_window < 1:
            raise ValueError(
                f"mqtt: backlog_window must be at least 1 (or the backlog never drains), "
                f"got {self.backlog_window}"
            )


class Backoff:
    """Reconnect delays: a short first retry, then exponential growth to a low cap, all full jitter.

    The n-th delay (from 0) is drawn uniformly from [min, min(cap, min·2^(n+1))] and ``reset`` after a
    successful connect: with the defaults 0.5–1 s, then 0.5–2 s, then 0.5–4 s for as long as it takes.
    So a gateway is back at most ``cap`` (plus one connect) after its broker accepts connections again.

    Why the cap is seconds, not minutes: backoff exists to spare a broker a thundering herd, and what
    spreads a herd is the jitter, not the length of the wait. paho's own doubling is deterministic, so
    a district of gateways losing the same broker would knock again in the same instant, every time.
    Drawn uniformly, N gateways still retrying reach the broker at about N/(cap-min) CONNECTs a second
    (under 300/s for a thousand gateways at the default 4 s), and only the first retries (0.5–1 s)
    come closer together, which matters only if the broker is back within that second. A long cap
    spreads no better; it only delays every gateway's recovery, and while the network itself is down
    a retry fails locally and costs nothing. Raise ``reconnect_max_s`` in the gateway config for a
    broker serving many thousands of gateways.
    """

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if min_s <= 0 or max_s <= 0:
            raise ValueError(f"backoff bounds must be positive, got min {min_s} s and cap {max_s} s")
        self.max_s = max_s
        self.min_s = min(min_s, max_s)
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.max_s, self.min_s * (1 << (self.attempt + 1)))

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        self.attempt = min(self.attempt + 1, 32)
        return self._rng.uniform(self.min_s, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Outage:
    """One broker outage of one gateway as its log tells it, and the counts ``/metrics`` reports.

    It starts at the first lost connection or failed connect (WARNING); repeated failures, a reconnect
    and a loss while still draining stay within it (DEBUG). It is over when the gateway is connected
    and nothing spooled before that reconnect is left (INFO, with how long, how many attempts, what
    was spooled meanwhile and how much backlog was delivered). Thread-safe: paho's thread and the
    agent's tick both report.
    """

    def __init__(self, name: str, broker: str) -> None:
        self.name, self.broker = name, broker
        self.outages = 0  # outages started in this run
        self.connect_failures = 0  # lost connections and failed connects in this run
        self._lock = threading.Lock()
        self._started: float | None = None  # monotonic start of the open outage
        self._attempts = 0  # failed reconnects within the open outage
        self._spooled = 0
        self._backlog = 0  # items pending at the reconnect: what the drain delivers
        self._back_ms: int | None = None  # clock of the reconnect ending it (None: still offline)
        self._back_at = 0.0
        self._refusals: set[str] = set()

    @property
    def draining(self) -> bool:
        """Connected again, with backlog of the outage still to deliver."""
        with self._lock:
            return self._back_ms is not None

    def lost(self, why: str, depth: int) -> None:
        """The connection dropped or a connect failed; ``depth``: items spooled right now."""
        with self._lock:
            self.connect_failures += 1
            self._back_ms = None
            if self._started is not None:
                self._attempts += 1
                log.debug("%s: broker %s still unreachable (%s)", self.name, self.broker, why)
                return
            self._started = time.monotonic()
            self._attempts, self._spooled, self._refusals = 0, 0, set()
            self.outages += 1
        log.warning(
            "%s: broker %s unreachable (%s); spooling (%d pending) and retrying every few seconds",
            self.name,
            self.broker,
            why,
            depth,
        )

    def refused(self, reason: str) -> bool:
        """A CONNACK refusal (credentials, authorisation): True the first time per outage and reason."""
        with self._lock:
            first = reason not in self._refusals
            self._refusals.add(reason)
            return first

    def spooled(self, items: int) -> None:
        with self._lock:
            if self._started is not None and self._back_ms is None:
                self._spooled += items

    def back(self, now_ms: int, depth: int) -> bool:
        """Connected again; True when this ends (the offline part of) an outage."""
        with self._lock:
            if self._started is None:
                return False
            self._back_ms, self._back_at, self._backlog = now_ms, time.monotonic(), depth
            offline_s = self._back_at - self._started
        log.debug("%s: broker %s back after %.1f s; draining %d", self.name, self.broker, offline_s, depth)
        return True

    def drained(self, oldest_ms: int | None) -> None:
        """Close the outage once nothing spooled before the reconnect is left (``oldest_ms``: the
        append time of the oldest pending item, None when the spool is empty)."""
        with self._lock:
            if self._started is None or self._back_ms is None:
                return
            if oldest_ms is not None and oldest_ms < self._back_ms:
                return
            offline_s, drain_s = self._back_at - self._started, time.monotonic() - self._back_at
            attempts, spooled, backlog = self._attempts, self._spooled, self._backlog
            self._started = self._back_ms = None
        log.info(
            "%s: broker %s back after %.1f s offline (%d failed reconnect attempt(s)); "
            "%d reading(s)/event(s) spooled meanwhile, %d drained in %.1f s",
            self.name,
            self.broker,
            offline_s,
            attempts,
            spooled,
            backlog,
            drain_s,
        )


_paho_log = logging.getLogger(f"{__name__}.paho")
# paho's errors about a socket that went away repeat what the outage log already says.
_CONNECTION_LOSS = ("Client is not connected", "failed to receive on socket", "timeout on socket")


def _log_paho(client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
    std = mqtt.LOGGING_LEVEL.get(cast(Any, level), logging.DEBUG)
    if buf.startswith(_CONNECTION_LOSS):
        std = logging.DEBUG
    _paho_log.log(std, "%s", buf)


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
    client.on_log = _log_paho
    return client


def schedule_retry(client: mqtt.Client, backoff: Backoff, what: str) -> None:
    """Give paho the next jittered delay (paho resets its doubling when the delay is set)."""
    delay = backoff.next_delay()
    cast(Any, client).reconnect_delay_set(delay, delay)
    log.debug("%s: next reconnect attempt in %.1fs", what, delay)
