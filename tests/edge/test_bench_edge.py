"""`yiwang bench edge` measures on real emulated hardware; here its counting, its shape and its refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contract.profiles import SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import BoundDevice
from edge.sources.modbus import ModbusBus
from yiwang.bench.edge import (
    BAUD,
    ENV4,
    SlaveRequest,
    _pty_pair,
    _rtu_slaves,
    agent_figures,
    bus_efficiency,
    cycle_ms,
    overhead_ms,
    wire_s,
)
from yiwang.servers import free_port

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_overhead_is_the_gap_between_an_answer_and_the_next_request() -> None:
    ms = 1_000_000
    requests = [
        SlaveRequest(1, 0 * ms, 30 * ms),
        SlaveRequest(2, 32 * ms, 61 * ms),  # 2 ms after the previous answer
        SlaveRequest(1, 61 * ms + ms // 2, 91 * ms),  # 0.5 ms
        SlaveRequest(2, 95 * ms, 125 * ms),  # 4 ms
    ]
    assert overhead_ms(requests) == [2.0, 0.5, 4.0]
    assert cycle_ms(requests) == pytest.approx((61.5 + 63) / 2)  # unit 1: 61.5 ms, unit 2: 63 ms


@pytest.mark.integration
def test_the_slaves_count_and_time_every_request_they_answer() -> None:
    """Counted at the slaves, in another process: what went over the wire, each held its wire time."""
    profile = SensorTypeProfile.model_validate(ENV4)
    configs = [DeviceConfig(id=f"env-{u:02d}", type=profile.id, unit=u, poll_s=1) for u in (1, 2, 3)]
    with _pty_pair() as (device, gateway), _rtu_slaves(device) as slaves:
        bus = ModbusBus(
            BusConfig(id="b", kind="modbus_rtu", port=gateway, baudrate=BAUD, timeout_s=1.0, devices=configs),
            [BoundDevice(c, profile) for c in configs],
            coalesce=False,  # four requests per device
        )

        async def polls() -> None:
            try:
                for _ in range(2):
                    await bus.poll_all()
            finally:
                await bus.aclose()

        asyncio.run(polls())
    assert slaves.pid > 0
    assert len(slaves.requests) == bus.stats.requests == 2 * 3 * 4
    assert [r.unit for r in slaves.requests[:5]] == [1, 1, 1, 1, 2]
    for r in slaves.requests:
        assert r.answered_ns - r.arrived_ns >= wire_s(1) * 1e9 * 0.99
    assert all(gap >= 0 for gap in overhead_ms(slaves.requests))


@pytest.mark.integration
def test_bus_efficiency_counts_requests_with_and_without_coalescing() -> None:
    result = bus_efficiency(cycles=1)
    # 30 slaves x 4 adjacent registers: one request each when coalesced, four when not.
    assert result["requests_per_cycle"] == 30
    assert result["requests_per_cycle_uncoalesced"] == 120
    assert result["bus_cycle_ms"] > result["ceiling_wire_ms_per_cycle"] > 0


@pytest.mark.integration
def test_a_silent_agent_yields_no_figure() -> None:
    # The agent publishes to a port where no broker listens: the bench's subscriber hears nothing.
    with pytest.raises(RuntimeError, match="published no readings"):
        agent_figures(CONFIG, seconds=1, agent_mqtt_port=free_port())


@pytest.mark.integration
def test_agent_figures_come_from_the_slaves_and_a_subscriber() -> None:
    result = agent_figures(CONFIG, seconds=3)  # short (the shape, not the numbers), yet 2+ cycles of 0.9 s
    for key in (
        "bus_overhead_ms_per_request_p50",
        "bus_overhead_ms_per_request_p99",
        "cycle_ms",
        "cycle_ms_loaded",
        "readings_per_device_per_s_loaded",
        "rss_mb",
    ):
        assert result[key] > 0, key
    assert result["bus_overhead_ms_per_request_p99"] >= result["bus_overhead_ms_per_request_p50"]
    assert result["cycle_ms"] > 30 * 1000 * wire_s(4)  # no cycle beats the wire
    assert result["rss_readings_published"] > 0


@pytest.mark.integration
def test_spool_figures_have_their_keys_and_ceilings() -> None:
    from yiwang.bench.edge import spool_figures

    result = spool_figures(readings=20_000)  # small: the shape, not the numbers
    for key in ("spool_write_per_s", "spool_encode_per_s", "drain_per_s", "drain_ceiling_per_s"):
        assert result[key] > 0, key
    assert result["spool_records"] == 20_000
    assert result["bytes_per_reading"] > 0 and result["spool_rss_mb"] > 0
