"""5G modem health over its AT port: signal (RSRP/RSRQ/SINR, RSSI), registration, operator, cell,
data usage. Published as telemetry of a ``gateway.modem@1`` device and, via :attr:`ModemSource.state`,
in the gateway's retained ``state`` message, so operators see link quality beside the data.

The modem is polled rarely (default once a minute) and each command has a timeout; a modem that does
not answer is reported unavailable like any other device.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import serial

from contract.messages import DeviceEntry, ModemState
from contract.profiles import Scalar, SensorTypeProfile
from edge.gateway_config import ModemConfig
from edge.sources.at_parse import parse_cops, parse_creg, parse_csq, parse_qeng, parse_qgdcnt
from edge.sources.base import SOURCE_API_VERSION, DeviceTimeout, SourceBatch, SourceError
from edge.sources.report import DeviceReporter, wall_ms
from edge.sources.serial_port import SerialPortOwner

log = logging.getLogger(__name__)

COMMANDS: list[tuple[str, Callable[[list[str]], dict[str, Scalar]]]] = [
    ('AT+QENG="servingcell"', parse_qeng),
    ("AT+CSQ", parse_csq),
    ("AT+CREG?", parse_creg),
    ("AT+COPS?", parse_cops),
    ("AT+QGDCNT?", parse_qgdcnt),
]
_FINAL = ("OK", "ERROR", "+CME ERROR", "+CMS ERROR")


class ModemSource(SerialPortOwner[dict[str, Scalar]]):
    api_version: ClassVar[int] = SOURCE_API_VERSION

    def __init__(self, modem: ModemConfig, profile: SensorTypeProfile) -> None:
        self.name = f"modem-{modem.device}"
        self.config = modem
        self.profile = profile
        self.reporter = DeviceReporter(modem.device, profile, max_interval_s=modem.poll_s)
        self.state: ModemState | None = None
        self._port: serial.Serial | None = None
        self._inflight: asyncio.Future[dict[str, Scalar]] | None = None
        self._next_due = 0.0
        self._closed = False

    def devices(self) -> Sequence[DeviceEntry]:
        return [DeviceEntry(device=self.config.device, type=self.profile.id)]

    def _command(self, port: serial.Serial, command: str) -> list[str]:
        port.reset_input_buffer()  # an unsolicited result code from before is not our answer
        port.write(command.encode() + b"\r")
        lines: list[str] = []
        deadline = time.monotonic() + self.config.timeout_s
        while time.monotonic() < deadline:
            raw = port.readline()
            line = raw.decode("ascii", errors="replace").strip()
            if not line or line == command:  # blank lines and the echo
                continue
            if line.startswith(_FINAL):
                if line != "OK":
                    log.info(
                        "modem %s on %s: %s answered %s", self.config.device, self.config.port, command, line
                    )
                return lines
            lines.append(line)
        raise DeviceTimeout(f"{command}: no final result within {self.config.timeout_s}s")

    def _poll_blocking(self) -> dict[str, Scalar]:
        if self._port is None:
            self._port = serial.Serial(self.config.port, self.config.baudrate, timeout=0.2)
        values: dict[str, Scalar] = {}
        for command, parse in COMMANDS:
            values.update(parse(self._command(self._port, command)))
        return values

    async def read(self) -> SourceBatch:
        if self._closed:
            raise SourceError(f"modem {self.config.port}: read after close")
        delay = self._next_due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_due = time.monotonic() + self.config.poll_s
        inflight = asyncio.get_running_loop().run_in_executor(None, self._poll_blocking)
        self._inflight = inflight
        now_ms = wall_ms()
        try:
            values = await asyncio.shield(inflight)
        except (SourceError, serial.SerialException, OSError) as err:
            self._inflight = None
            self._drop_port()
            self.state = None
            event = self.reporter.failed(str(err), now_ms)
            log.warning("modem %s on %s: %s", self.config.device, self.config.port, err)
            return SourceBatch(events=[event] if event else [])
        self._inflight = None
        rsrp, sinr = values.get("rsrp_dbm"), values.get("sinr_db")
        self.state = ModemState(
            rsrp=float(rsrp) if isinstance(rsrp, int | float) else None,
            sinr=float(sinr) if isinstance(sinr, int | float) else None,
        )
        event = self.reporter.succeeded(now_ms)
        reading = self.reporter.values(values, time.monotonic(), now_ms)
        return SourceBatch([reading] if reading else [], [event] if event else [])
