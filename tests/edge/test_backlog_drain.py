"""A backlog drains interleaved with live data, live first, clocked by the broker: against a real Mosquitto.

A gateway back from a long outage holds a backlog of large messages. Live readings taken meanwhile
must not queue behind it: MQTT sends in the order messages are handed over, so what counts is how
many backlog messages the publisher has handed over and not yet seen acknowledged when a live
reading arrives. That is bounded by ``MqttOptions.backlog_window``, and the drain still finishes.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from pathlib import Path

import pytest

from contract.messages import Reading, TelemetryMessage, decode_message
from contract.topics import TopicKind, subscription
from edge.mqtt_session import MqttOptions
from edge.publisher import GatewayPublisher
from edge.spool import Spool
from tests.edge.test_publisher import DEVICES, GATEWAY, T0, Subscriber, wait_for
from yiwang.servers import MosquittoServer

pytestmark = pytest.mark.integration

BACKLOG_DEVICES = 30
BACKLOG_SECONDS = 2_000  # 60,000 readings: 120 messages of 500
LIVE_DEVICE = "live-01"


def backlog_batches() -> list[list[Reading]]:
    """One batch per poll cycle of a 30-device bus, as the agent spools them."""
    return [
        [
            Reading(
                device=f"env-{d:02d}",
                ts=T0 + s * 1000,
                values={"temperature": 20.0 + (s * 7 + d) % 50 / 10, "humidity": 40.0 + (s + d) % 30},
            )
            for d in range(BACKLOG_DEVICES)
        ]
        for s in range(BACKLOG_SECONDS)
    ]


def test_live_readings_keep_flowing_while_a_backlog_drains_and_the_drain_finishes(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    community = f"t-{uuid.uuid4().hex[:10]}"
    batches = backlog_batches()
    with Spool(tmp_path / "gw.sqlite3", live_window_s=1) as spool:
        for batch in batches:
            spool.append_readings(batch)
        time.sleep(1.1)  # older than the live window now: this is backlog
        sub = Subscriber(
            mosquitto.host, mosquitto.port, subscription(TopicKind.TELEMETRY, community=community)
        )
        # The agent's defaults: no drain rate configured, the broker's acknowledgements clock the drain.
        options = MqttOptions(port=mosquitto.port)
        publisher = GatewayPublisher(community, GATEWAY, spool, DEVICES, options)
        # Live reading ts -> messages the broker had acknowledged when it was taken. The broker forwards
        # in the order it receives, so those are the first ones the subscriber sees, however it lags.
        marks: dict[int, int] = {}
        stop = threading.Event()

        def live_bus() -> None:
            i = 0
            while not stop.is_set():
                ts = T0 + 10_000_000 + i
                marks[ts] = publisher.published
                publisher.publish_readings([Reading(device=LIVE_DEVICE, ts=ts, values={"temperature": 21.0})])
                i += 1
                time.sleep(0.005)

        bus = threading.Thread(target=live_bus, daemon=True)
        try:
            publisher.start()
            wait_for(lambda: publisher.connected)
            bus.start()
            backlog_keys = {(r.device, r.ts) for b in batches for r in b}
            wait_for(lambda: backlog_keys <= received_keys(sub), publisher, timeout=120)
            stop.set()
            bus.join(5)
            wait_for(
                lambda: set(marks) <= {ts for d, ts in received_keys(sub) if d == LIVE_DEVICE}, publisher
            )
        finally:
            stop.set()
            publisher.stop()
            sub.close()

    arrivals = list(enumerate(telemetry(sub)))
    backlog_at = [i for i, m in arrivals if m.readings[0].device != LIVE_DEVICE]
    live_at = {r.ts: i for i, m in arrivals if m.readings[0].device == LIVE_DEVICE for r in m.readings}
    during = {ts: i for ts, i in live_at.items() if i < backlog_at[-1]}
    assert len(during) >= 5, "live readings arrived while the backlog was still draining"
    # Backlog messages the broker had not acknowledged when a live reading was taken, and sent before it.
    overtaken = [sum(1 for b in backlog_at if marks[ts] <= b < i) for ts, i in during.items()]
    window = options.backlog_window
    # Typically the window, plus the one being handed over as the reading came; acknowledgements the
    # broker had sent and the publisher had not yet counted add a few when the machine is busy. Bounded
    # by paho's queue alone (max_queued, 40), a live reading waits behind 24 to 41 of them (measured).
    assert statistics.median(overtaken) <= window + 1, f"backlog messages ahead of live ones: {overtaken}"
    assert max(overtaken) < options.max_queued // 2, f"backlog messages ahead of live ones: {overtaken}"
    assert len(backlog_at) >= BACKLOG_SECONDS * BACKLOG_DEVICES // options.max_readings_per_message
    assert spool_left(tmp_path) == 0


_decoded: dict[bytes, TelemetryMessage] = {}


def telemetry(sub: Subscriber) -> list[TelemetryMessage]:
    """Telemetry in arrival order (decoded once: the test polls this while 60,000 readings arrive)."""
    out = []
    for payload, _ in sub.of_kind(TopicKind.TELEMETRY):
        if payload not in _decoded:
            message = decode_message(TopicKind.TELEMETRY, payload)
            assert isinstance(message, TelemetryMessage)
            _decoded[payload] = message
        out.append(_decoded[payload])
    return out


def received_keys(sub: Subscriber) -> set[tuple[str, int]]:
    return {(r.device, r.ts) for m in telemetry(sub) for r in m.readings}


def spool_left(tmp_path: Path) -> int:
    with Spool(tmp_path / "gw.sqlite3") as spool:
        return spool.depth()
