"""The contract every source must pass, built-in or plugin. An integrator's test calls
:func:`check_source` with their factory, a bus config and devices whose real (emulated) hardware is up,
and :func:`check_failing_channel` with a channel that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from contract.messages import Event, Reading
from contract.profiles import SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import (
    SOURCE_API_VERSION,
    BoundDevice,
    ConfigError,
    EdgeError,
    Source,
    SourceBatch,
    SourceFactory,
)
from edge.sources.report import AVAILABLE, UNAVAILABLE


def check_construction(
    factory: SourceFactory, bus: BusConfig, devices: Sequence[BoundDevice], wrong: SensorTypeProfile
) -> Source:
    """Declares the API version, is a Source, lists its devices; a device of a type it cannot read is a ConfigError."""
    assert getattr(factory, "api_version", None) == SOURCE_API_VERSION
    source = factory(bus, devices)
    assert isinstance(source, Source)
    assert [(d.device, d.type) for d in source.devices()] == [(b.config.id, b.profile.id) for b in devices]
    misfit = BoundDevice(DeviceConfig(id="misfit", type=wrong.id, unit=99), wrong)
    with pytest.raises(ConfigError, match="misfit"):
        factory(bus, [*devices[:-1], misfit])
    return source


async def _reads(source: Source, n: int, limit_s: float) -> list[SourceBatch]:
    return [await asyncio.wait_for(source.read(), limit_s) for _ in range(n)]


def check_source(
    factory: SourceFactory,
    bus: BusConfig,
    devices: Sequence[BoundDevice],
    wrong: SensorTypeProfile,
    *,
    reads: int = 2,
) -> list[Reading]:
    """Reads valid readings of its devices only; closes idempotently; refuses to read after close."""
    source = check_construction(factory, bus, devices, wrong)
    profiles = {b.config.id: b.profile for b in devices}

    async def scenario() -> list[SourceBatch]:
        try:
            return await _reads(source, reads, 20)
        finally:
            await source.aclose()
            await source.aclose()
            with pytest.raises(EdgeError):
                await source.read()

    batches = asyncio.run(scenario())
    readings = [r for b in batches for r in b.readings]
    assert readings, "a source with working devices must produce readings"
    for reading in readings:
        assert reading.device in profiles
        assert profiles[reading.device].coerce_values(dict(reading.values)) == reading.values
    return readings


def check_failing_channel(
    factory: SourceFactory, bus: BusConfig, devices: Sequence[BoundDevice]
) -> list[Event]:
    """A channel that is not there: the read returns ``device.unavailable`` events, it does not raise."""
    source = factory(bus, devices)

    async def scenario() -> list[SourceBatch]:
        try:
            return await _reads(source, 1, 20)
        finally:
            await source.aclose()

    events = [e for b in asyncio.run(scenario()) for e in b.events]
    assert events and {e.kind for e in events} <= {UNAVAILABLE, AVAILABLE}
    assert {e.device for e in events} <= {b.config.id for b in devices}
    return events
