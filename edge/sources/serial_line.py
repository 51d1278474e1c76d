"""Serial line protocols (NMEA-0183, CSV, JSON lines) on a serial port with pyserial.

One port carries one device. Bytes are framed (delimiter or length), checked (NMEA ``*hh``) and parsed
by the parser the profile names; garbage, partial lines and bursts are expected on a real cable and
cost a counter and a debug line, never the loop. A device that sends no valid frame for three of its
expected intervals is reported unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import ClassVar

import serial

from contract.messages import DeviceEntry
from contract.profiles import SerialLineProtocol
from edge.gateway_config import BusConfig
from edge.sources.base import SOURCE_API_VERSION, BoundDevice, ConfigError, SourceBatch, SourceError
from edge.sources.framing import Framer
from edge.sources.parsers import LineError, NotForUs, parse_frame
from edge.sources.report import DeviceReporter, wall_ms
from edge.sources.serial_port import SerialPortOwner

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 0.2


class SerialLineSource(SerialPortOwner[bytes]):
    """A line-protocol device on a serial port, as a :class:`~edge.sources.base.Source`."""

    api_version: ClassVar[int] = SOURCE_API_VERSION

    def __init__(self, bus: BusConfig, devices: Sequence[BoundDevice]) -> None:
        if bus.port is None:
            raise ConfigError(f"bus {bus.id}: serial_line needs a serial port")
        if len(devices) != 1:
            raise ConfigError(
                f"bus {bus.id}: a serial line port carries exactly one device, not {len(devices)}"
            )
        self.bound = devices[0]
        protocol = self.bound.profile.protocol
        if not isinstance(protocol, SerialLineProtocol):
            raise ConfigError(
                f"bus {bus.id} device {self.bound.where}: profile has no serial_line protocol section"
            )
        self.name = bus.id
        self.bus = bus
        self.protocol = protocol
        self.framer = Framer(
            delimiter=protocol.delimiter.encode() if protocol.framing == "delimiter" else None,
            length=protocol.length,
            max_frame_bytes=protocol.max_frame_bytes,
        )
        cfg = self.bound.config
        self.reporter = DeviceReporter(cfg.id, self.bound.profile, cfg.deadband, cfg.max_interval_s)
        self.stale_s = 3 * max(self.bound.profile.expected_interval_s, cfg.poll_s)
        self.frames = 0
        self.bad_frames = 0
        self._pending: list[bytes] = []
        self._port: serial.Serial | None = None
        self._inflight: asyncio.Future[bytes] | None = None
        self._last_valid = time.monotonic()
        self._retry_at = 0.0
        self._closed = False

    @property
    def device_id(self) -> str:
        return self.bound.config.id

    def devices(self) -> Sequence[DeviceEntry]:
        return [DeviceEntry(device=self.device_id, type=self.bound.profile.id)]

    def _open(self) -> serial.Serial:
        if self._port is None:
            b = self.bus
            self._port = serial.Serial(
                b.port,
                b.baudrate,
                bytesize=b.bytesize,
                parity=b.parity,
                stopbits=b.stopbits,
                timeout=_READ_TIMEOUT_S,
            )
        return self._port

    def _read_blocking(self) -> bytes:
        port = self._open()
        data: bytes = port.read(1)
        if data:
            data += port.read(port.in_waiting)
        return data

    async def read(self) -> SourceBatch:
        while not self._closed:
            while self._pending:
                batch = self._handle(self._pending.pop(0))
                if batch:
                    return batch
            now = time.monotonic()
            if now - self._last_valid > self.stale_s:
                self._last_valid = now  # one event per stale period, not one per read
                event = self.reporter.failed(f"no valid frame in {self.stale_s:.0f}s", wall_ms())
                if event:
                    log.warning(
                        "port %s device %s: no valid frame in %.0fs",
                        self.bus.port,
                        self.device_id,
                        self.stale_s,
                    )
                    return SourceBatch(events=[event])
            if now < self._retry_at:
                await asyncio.sleep(min(self._retry_at - now, 1.0))
                continue
            inflight = asyncio.get_running_loop().run_in_executor(None, self._read_blocking)
            self._inflight = inflight
            try:
                # Shielded: a cancelled read leaves the thread's read to finish, and aclose waits for it.
                data = await asyncio.shield(inflight)
            except (serial.SerialException, OSError) as err:
                self._inflight = None
                self._drop_port()
                self._retry_at = time.monotonic() + 5.0
                event = self.reporter.failed(f"port error: {err}", wall_ms())
                log.warning("port %s device %s: %s; reopening in 5s", self.bus.port, self.device_id, err)
                if event:
                    return SourceBatch(events=[event])
                continue
            self._inflight = None
            self._pending += self.framer.feed(data)
        raise SourceError(f"port {self.bus.port}: read after close")

    def _handle(self, frame: bytes) -> SourceBatch:
        self.frames += 1
        try:
            values = parse_frame(self.protocol, frame)
        except NotForUs:
            return SourceBatch()
        except LineError as err:
            self.bad_frames += 1
            log.debug("port %s device %s: bad frame %r: %s", self.bus.port, self.device_id, frame[:80], err)
            return SourceBatch()
        self._last_valid = time.monotonic()
        now_ms = wall_ms()
        event = self.reporter.succeeded(now_ms)
        reading = self.reporter.values(values, time.monotonic(), now_ms)
        return SourceBatch([reading] if reading else [], [event] if event else [])
