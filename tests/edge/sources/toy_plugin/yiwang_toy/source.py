"""The toy protocol: one TCP connection per bus; ``READ <unit>\\n`` answered ``f=v;f=v\\n`` or ``ERR why``.

Written only against Yiwang's public plugin API: ``edge.sources.base`` and ``edge.sources.report``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import ClassVar

from contract.messages import DeviceEntry
from contract.profiles import Scalar, SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import (
    SOURCE_API_VERSION,
    BoundDevice,
    ConfigError,
    ContractSample,
    SourceBatch,
    SourceError,
)
from edge.sources.report import DeviceReporter, wall_ms

_SAMPLE_PROFILE = SensorTypeProfile.model_validate(
    {"id": "toy.th@1", "name": "toy", "fields": {"temperature": {"type": "float", "min": -40, "max": 85}}}
)


def sample(kind: str) -> ContractSample:
    device = DeviceConfig(id="toy-1", type="toy.th@1", unit=1)
    bus = BusConfig(id="toy", kind=kind, host="127.0.0.1", tcp_port=9, devices=[device])
    return bus, [BoundDevice(device, _SAMPLE_PROFILE)]


class ToyTcpSource:
    api_version: ClassVar[int] = SOURCE_API_VERSION

    def __init__(self, bus: BusConfig, devices: Sequence[BoundDevice]) -> None:
        if bus.host is None or bus.tcp_port is None:
            raise ConfigError(f"bus {bus.id}: toy_tcp needs host and tcp_port")
        for bound in devices:
            if bound.config.unit is None:
                raise ConfigError(f"bus {bus.id} device {bound.where}: a toy device needs a unit")
            if not bound.profile.fields:
                raise ConfigError(f"bus {bus.id} device {bound.where}: the profile has no fields to read")
        self.name = bus.id
        self.bus = bus
        self.bound = list(devices)
        self.reporters = [
            DeviceReporter(b.config.id, b.profile, b.config.deadband, b.config.max_interval_s)
            for b in devices
        ]
        self._next = 0
        self._due = [0.0] * len(devices)
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._closed = False

    @staticmethod
    def contract_sample() -> ContractSample:
        return sample("toy_tcp")

    def devices(self) -> Sequence[DeviceEntry]:
        return [DeviceEntry(device=b.config.id, type=b.profile.id) for b in self.bound]

    async def read(self) -> SourceBatch:
        if self._closed:
            raise SourceError(f"bus {self.name}: read after close")
        index = self._next
        self._next = (self._next + 1) % len(self.bound)
        delay = self._due[index] - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        bound, reporter = self.bound[index], self.reporters[index]
        self._due[index] = time.monotonic() + bound.config.poll_s
        try:
            values = await self._ask(bound)
        except (TimeoutError, OSError, SourceError) as err:
            self._drop()
            event = reporter.failed(str(err) or type(err).__name__, wall_ms())
            return SourceBatch(events=[event] if event else [])
        events = [e for e in [reporter.succeeded(wall_ms())] if e]
        reading = reporter.values(values, time.monotonic(), wall_ms())
        return SourceBatch([reading] if reading else [], events)

    async def _ask(self, bound: BoundDevice) -> dict[str, Scalar]:
        if self._stream is None:
            assert self.bus.host is not None and self.bus.tcp_port is not None
            self._stream = await asyncio.wait_for(
                asyncio.open_connection(self.bus.host, self.bus.tcp_port), self.bus.timeout_s
            )
        reader, writer = self._stream
        writer.write(f"READ {bound.config.unit}\n".encode())
        await writer.drain()
        line = (await asyncio.wait_for(reader.readline(), self.bus.timeout_s)).decode().strip()
        if not line or line.startswith("ERR"):
            raise SourceError(line or "connection closed")
        values: dict[str, Scalar] = {}
        for pair in line.split(";"):
            name, _, text = pair.partition("=")
            if name in bound.profile.fields:
                try:
                    values[name] = float(text)
                except ValueError as err:
                    raise SourceError(f"{name}: {text!r} is not a number") from err
        return values

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream[1].close()
            self._stream = None

    async def aclose(self) -> None:
        self._closed = True
        self._drop()
