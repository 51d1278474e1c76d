"""The gateway's MQTT session after a broker outage: back within seconds, and an outage told once."""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from contract.messages import Reading
from contract.topics import TopicKind, subscription
from edge.agent import mqtt_options
from edge.gateway_config import GatewayConfig
from edge.mqtt_session import Backoff, MqttOptions
from edge.publisher import GatewayPublisher
from edge.spool import Spool
from tests.edge.test_publisher import DEVICES, GATEWAY, Subscriber, decoded_telemetry, keys, readings_for
from yiwang.servers import start_mosquitto

DEFAULTS = MqttOptions()


def delays(backoff: Backoff, attempts: int) -> list[float]:
    return [backoff.next_delay() for _ in range(attempts)]


def test_default_delays_stay_within_a_few_seconds() -> None:
    backoff = Backoff(DEFAULTS.reconnect_min_s, DEFAULTS.reconnect_max_s, random.Random(7))
    drawn = delays(backoff, 200)
    assert all(DEFAULTS.reconnect_min_s <= d <= 4.0 for d in drawn)
    assert drawn[0] <= 1.0, "the first retry is short"


def test_the_gateway_config_default_caps_the_delay_at_a_few_seconds() -> None:
    options = mqtt_options(GatewayConfig(community="c-1", gateway="gw-1"))
    assert options.reconnect_max_s <= 5
    backoff = Backoff(options.reconnect_min_s, options.reconnect_max_s, random.Random(3))
    assert max(delays(backoff, 200)) <= 5


def test_full_jitter_spreads_even_the_first_retry_and_later_ones_over_min_to_cap() -> None:
    # A district of gateways losing one broker: their first retries must not land in one instant.
    firsts = [Backoff(0.5, 4, random.Random(seed)).next_delay() for seed in range(500)]
    assert all(0.5 <= d <= 1.0 for d in firsts)
    assert max(firsts) - min(firsts) > 0.4
    backoff = Backoff(0.5, 4, random.Random(11))
    later = delays(backoff, 500)[10:]
    assert min(later) < 1.0 and max(later) > 3.5, "uniform over [min, cap] once at the cap"
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        Backoff(0, 4)
    with pytest.raises(ValueError, match="positive"):
        Backoff(0.5, -1)
    # A cap below the minimum wins: the configured cap is the promise.
    assert all(d <= 2 for d in delays(Backoff(5, 2, random.Random(1)), 20))
    with pytest.raises(ValueError, match="backlog_window must be at least 1"):
        MqttOptions(backlog_window=0)


@pytest.mark.integration
def test_back_within_seconds_of_the_broker_and_the_outage_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    community = f"t-{uuid.uuid4().hex[:10]}"
    broker = start_mosquitto(base_dir=tmp_path)
    sub = Subscriber(
        broker.host,
        broker.port,
        subscription(TopicKind.TELEMETRY, community=community),
        client_id=f"test-sub-{community}",
    )
    # The gateway config's defaults, as the agent builds its session from them.
    config = GatewayConfig(community=community, gateway=GATEWAY, mqtt={"port": broker.port})
    spool = Spool(tmp_path / "gw.sqlite3")
    publisher = GatewayPublisher(community, GATEWAY, spool, DEVICES, mqtt_options(config))
    batches = readings_for(40)
    during: list[list[Reading]] = []
    try:
        publisher.start()
        wait(lambda: publisher.connected)
        publisher.publish_readings(batches[0])
        wait(lambda: spool.depth() == 0, publisher)

        caplog.clear()
        broker.halt()
        wait(lambda: not publisher.connected)
        spooled = 0
        outage_ends = time.monotonic() + 8
        for batch in batches[1:]:  # a reading batch a second while the broker is away
            if time.monotonic() >= outage_ends:
                break
            spooled += publisher.publish_readings(batch)
            during.append(batch)
            time.sleep(1)
        broker.start()
        restarted = time.monotonic()
        wait(lambda: publisher.connected, timeout=30, poll_s=0.01)
        back_s = time.monotonic() - restarted

        wait(lambda: spool.depth() == 0, publisher)
        wait(lambda: any(r.levelno == logging.INFO for r in outage_records(caplog)), publisher)
        records = outage_records(caplog)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        wait(lambda: received(sub) >= set(keys(r for b in during for r in b)))
    finally:
        publisher.stop()
        sub.close()
        spool.close()
        broker.stop()

    assert back_s <= 5, f"reconnected {back_s:.1f} s after the broker was back"
    assert spooled == sum(len(b) for b in during) > 0
    assert received(sub) >= set(keys(r for b in during for r in b)), "every reading spooled while offline"
    assert not errors, errors
    by_level = {
        level: [r.getMessage() for r in records if r.levelno == level]
        for level in (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
    }
    assert not by_level[logging.ERROR] and not by_level[logging.CRITICAL], by_level
    assert len(by_level[logging.WARNING]) == 1, by_level
    assert "unreachable" in by_level[logging.WARNING][0]
    assert records[0].levelno == logging.WARNING, "the warning comes when the outage starts"
    (end,) = by_level[logging.INFO]
    assert re.search(rf"\b{spooled} reading\(s\)/event\(s\) spooled meanwhile, {spooled} drained\b", end), end


def received(sub: Subscriber) -> set[tuple[str, int]]:
    return {(r.device, r.ts) for m in decoded_telemetry(sub) for r in m.readings}


def outage_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the agent logged (its own loggers and paho's through them) at INFO and above."""
    return [r for r in caplog.records if r.name.startswith("edge") and r.levelno >= logging.INFO]


def wait(
    condition: Callable[[], bool],
    publisher: GatewayPublisher | None = None,
    timeout: float = 20,
    poll_s: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        if publisher is not None:
            publisher.pump()  # what the agent's tick does
        time.sleep(poll_s)
