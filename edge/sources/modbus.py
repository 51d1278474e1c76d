"""Modbus RTU (RS-485) and Modbus TCP: one scheduler per bus, coalesced reads, report on change.

One :class:`ModbusBus` owns one pymodbus client and every slave behind it. The agent calls ``read``
one at a time, so exactly one request is on the wire at any moment (ThingsBoard gw#905 and EdgeX
device-modbus-go#685 ran one thread per slave on a shared port and the slaves' answers collided).
Devices are polled in due order; each device's fields are read as the coalesced blocks planned at
load time. A failed request is retried at once (``retries``), then the device is reported
unavailable and re-polled with exponential backoff, so a dead slave costs little bus time.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from contract.messages import DeviceEntry, Event, Reading
from contract.profiles import ModbusProtocol, Scalar
from edge.gateway_config import BusConfig
from edge.sources.base import (
    SOURCE_API_VERSION,
    BoundDevice,
    ConfigError,
    DeviceRefused,
    DeviceTimeout,
    SourceBatch,
    SourceError,
)
from edge.sources.decode import decode_point
from edge.sources.plan import Block, plan_blocks, plan_uncoalesced
from edge.sources.report import DeviceReporter, wall_ms

log = logging.getLogger(__name__)

_Client = AsyncModbusSerialClient | AsyncModbusTcpClient


@dataclass
class _Slave:
    bound: BoundDevice
    unit: int
    blocks: list[Block]
    reporter: DeviceReporter
    next_due: float = 0.0
    order: int = 0

    @property
    def id(self) -> str:
        return self.bound.config.id


@dataclass
class BusStats:
    """Counters for the bench and for logs: requests, failures, polls."""

    requests: int = 0
    failed_requests: int = 0
    polls: int = 0
    failed_polls: int = 0
    per_device: dict[str, int] = field(default_factory=dict)


class ModbusBus:
    """A Modbus RTU or TCP bus as a :class:`~edge.sources.base.Source`."""

    api_version: ClassVar[int] = SOURCE_API_VERSION
    transport: ClassVar[str] = "rtu"

    def __init__(
        self,
        bus: BusConfig,
        devices: Sequence[BoundDevice],
        *,
        coalesce: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = bus.id
        self.bus = bus
        self.stats = BusStats()
        self._monotonic = monotonic
        self._client: _Client | None = None
        self._closed = False
        self._check_transport(bus)
        self._slaves: list[_Slave] = []
        for order, bound in enumerate(devices):
            protocol = bound.profile.protocol
            if not isinstance(protocol, ModbusProtocol):
                raise ConfigError(
                    f"bus {bus.id} device {bound.where}: profile has no modbus protocol section"
                )
            unit = bound.config.unit
            if unit is None:
                raise ConfigError(f"bus {bus.id} device {bound.where}: a Modbus device needs a unit id")
            unknown = set(bound.config.deadband) - set(bound.profile.fields)
            if unknown:
                raise ConfigError(
                    f"bus {bus.id} device {bound.where}: deadband for unknown field(s) {sorted(unknown)}"
                )
            blocks = (
                plan_blocks(protocol.fields, max_gap=protocol.max_gap)
                if coalesce
                else plan_uncoalesced(protocol.fields)
            )
            reporter = DeviceReporter(
                bound.config.id, bound.profile, bound.config.deadband, bound.config.max_interval_s
            )
            self._slaves.append(_Slave(bound, unit, blocks, reporter, order=order))
        # A heap of (due time, order, slave): the order breaks ties so polls are fair and stable.
        self._due: list[tuple[float, int, _Slave]] = [(0.0, s.order, s) for s in self._slaves]
        heapq.heapify(self._due)

    def _check_transport(self, bus: BusConfig) -> None:
        if bus.port is None:
            raise ConfigError(f"bus {bus.id}: modbus_rtu needs a serial port")

    def _make_client(self) -> _Client:
        b = self.bus
        assert b.port is not None
        return AsyncModbusSerialClient(
            b.port,
            framer=FramerType.RTU,
            baudrate=b.baudrate,
            bytesize=b.bytesize,
            parity=b.parity,
            stopbits=b.stopbits,
            timeout=b.timeout_s,
            retries=0,  # retries and backoff are ours, per device, so a failure is seen and reported
            name=b.id,
        )

    @property
    def endpoint(self) -> str:
        return self.bus.port or "?"

    def devices(self) -> Sequence[DeviceEntry]:
        return [DeviceEntry(device=s.id, type=s.bound.profile.id) for s in self._slaves]

    def requests_per_cycle(self) -> int:
        """Requests one poll of every device costs when all answer."""
        return sum(len(s.blocks) for s in self._slaves)

    async def read(self) -> SourceBatch:
        if self._closed:
            raise SourceError(f"bus {self.name}: read after close")
        due, order, slave = heapq.heappop(self._due)
        delay = due - self._monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return await self._poll(slave)
        finally:
            heapq.heappush(self._due, (slave.next_due, order, slave))

    async def poll_all(self) -> SourceBatch:
        """Poll every device once, now, in order (a full poll cycle; used by the bench)."""
        readings: list[Reading] = []
        events: list[Event] = []
        for slave in self._slaves:
            batch = await self._poll(slave)
            readings += batch.readings
            events += batch.events
        return SourceBatch(readings, events)

    async def _poll(self, slave: _Slave) -> SourceBatch:
        started = self._monotonic()
        poll_s = slave.bound.config.poll_s
        now_ms = wall_ms()
        self.stats.polls += 1
        try:
            values = await self._read_device(slave)
        except SourceError as err:
            self.stats.failed_polls += 1
            backoff = min(poll_s * 2 ** min(slave.reporter.failures, 16), self.bus.backoff_max_s)
            slave.next_due = started + max(poll_s, backoff)
            event = slave.reporter.failed(str(err), now_ms)
            log.log(
                logging.WARNING if event else logging.DEBUG,
                "bus %s (%s) device %s unit %d: %s; next try in %.1fs",
                self.name,
                self.endpoint,
                slave.id,
                slave.unit,
                err,
                slave.next_due - started,
            )
            return SourceBatch(events=[event] if event else [])
        slave.next_due = started + poll_s
        events = [e for e in [slave.reporter.succeeded(now_ms)] if e]
        if events:
            log.info(
                "bus %s (%s) device %s unit %d: available again",
                self.name,
                self.endpoint,
                slave.id,
                slave.unit,
            )
        # The poll's start, not its end: starts keep the schedule's cadence (never closer than poll_s),
        # while ends jitter with the wire, and an end 999 ms after the last one would skip a reading.
        reading = slave.reporter.values(values, started, now_ms)
        return SourceBatch([reading] if reading else [], events)

    async def _read_device(self, slave: _Slave) -> dict[str, Scalar]:
        values: dict[str, Scalar] = {}
        for block in slave.blocks:
            words = await self._read_block(slave, block)
            for name, point in block.points:
                try:
                    values[name] = decode_point(words[block.slice_for(point)], point)
                except SourceError as err:
                    log.warning("bus %s device %s: field %s: %s", self.name, slave.id, name, err)
        return values

    async def _read_block(self, slave: _Slave, block: Block) -> list[int] | list[bool]:
        last: SourceError | None = None
        for attempt in range(self.bus.retries + 1):
            if attempt:
                # Back off a little: a corrupted frame is often line noise that passes.
                await asyncio.sleep(0.05 * 2 ** (attempt - 1))
            self.stats.requests += 1
            self.stats.per_device[slave.id] = self.stats.per_device.get(slave.id, 0) + 1
            try:
                return await self._request(slave.unit, block)
            except DeviceRefused:
                self.stats.failed_requests += 1
                raise  # an exception code is an answer: asking again gets the same answer
            except SourceError as err:
                self.stats.failed_requests += 1
                last = err
        assert last is not None
        raise last

    async def _request(self, unit: int, block: Block) -> list[int] | list[bool]:
        client = await self._connected()
        read: Callable[..., Any] = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[block.function]
        what = f"{block.function} {block.start}+{block.count}"
        try:
            response = await read(block.start, count=block.count, device_id=unit)
        except ModbusException as err:
            # pymodbus reports a silent slave and a bad-CRC answer (dropped by its framer) alike.
            raise DeviceTimeout(f"no valid answer to {what} within {self.bus.timeout_s}s") from err
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise DeviceRefused(f"{what} refused with exception code {code}")
        data: list[int] | list[bool] = (
            list(response.bits) if block.function in ("coil", "discrete") else list(response.registers)
        )
        if len(data) < block.count:
            raise DeviceTimeout(f"{what}: short answer of {len(data)}")
        return data[: block.count]

    async def _connected(self) -> _Client:
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connected and not await self._client.connect():
            raise DeviceTimeout(f"cannot open {self.endpoint}")
        return self._client

    async def aclose(self) -> None:
        self._closed = True
        if self._client is not None:
            self._client.close()
            self._client = None


class ModbusTcpBus(ModbusBus):
    """Modbus TCP (a meter with Ethernet, or an RS-485/TCP gateway): the same scheduler, one socket."""

    transport: ClassVar[str] = "tcp"

    def _check_transport(self, bus: BusConfig) -> None:
        if bus.host is None:
            raise ConfigError(f"bus {bus.id}: modbus_tcp needs a host")

    def _make_client(self) -> _Client:
        b = self.bus
        assert b.host is not None
        return AsyncModbusTcpClient(b.host, port=b.tcp_port or 502, timeout=b.timeout_s, retries=0, name=b.id)

    @property
    def endpoint(self) -> str:
        return f"{self.bus.host}:{self.bus.tcp_port or 502}"
