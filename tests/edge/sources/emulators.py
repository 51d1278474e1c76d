"""Real device emulators for source tests and the bench: socat pty pairs, pymodbus servers, line
emitters. Plain helpers (no pytest), each a context manager that cleans up after itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

SOCAT = shutil.which("socat") or "/usr/bin/socat"


@dataclass(frozen=True)
class PtyPair:
    """Two linked pseudo-terminals: the device end and the gateway end of a serial cable."""

    device: str
    gateway: str


@contextmanager
def pty_pair() -> Iterator[PtyPair]:
    workdir = Path(tempfile.mkdtemp(prefix="yiwang-pty-"))
    device, gateway = workdir / "device", workdir / "gateway"
    proc = subprocess.Popen(
        [SOCAT, f"pty,raw,echo=0,link={device}", f"pty,raw,echo=0,link={gateway}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (device.exists() and gateway.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat did not create the pty pair in {workdir}")
            time.sleep(0.01)
        yield PtyPair(str(device), str(gateway))
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Slave:
    """One emulated slave: holding/input registers and bits in one shared block from address 0.

    ``delay_s`` answers slowly; ``silent`` never answers (a dead or disconnected slave);
    ``corrupt`` answers with a broken CRC.
    """

    unit: int
    registers: dict[int, int] = field(default_factory=dict)
    size: int = 300
    delay_s: float = 0.0
    silent: bool = False
    corrupt: bool = False
    requests: int = 0

    def sim_device(self) -> SimDevice:
        values = [self.registers.get(i, 0) for i in range(self.size)]
        bits = [bool(self.registers.get(i, 0)) for i in range(self.size)]
        blocks = (
            [SimData(0, values=bits, datatype=DataType.BITS)],
            [SimData(0, values=bits, datatype=DataType.BITS)],
            [SimData(0, values=values, datatype=DataType.REGISTERS)],
            [SimData(0, values=values, datatype=DataType.REGISTERS)],
        )
        return SimDevice(self.unit, simdata=blocks, action=self._action)

    async def _action(
        self, fc: int, start: int, address: int, count: int, regs: list[int], setv: Any
    ) -> ExcCodes | None:
        self.requests += 1
        if fc in (3, 4):
            # ``registers`` is the truth, so a test can change a value while the server runs.
            for i in range(len(regs)):
                regs[i] = self.registers.get(start + i, 0)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return None


class ModbusEmulator:
    """A pymodbus server (serial on a pty, or TCP on loopback) in its own thread and event loop."""

    def __init__(
        self,
        slaves: list[Slave],
        *,
        port: str | None = None,
        tcp_port: int | None = None,
        baudrate: int = 9600,
    ) -> None:
        self.slaves = {s.unit: s for s in slaves}
        self._port, self._tcp_port, self._baudrate = port, tcp_port, baudrate
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="modbus-emulator", daemon=True)
        self._ready = threading.Event()
        self._server: ModbusSerialServer | ModbusTcpServer | None = None
        self._error: BaseException | None = None

    def set_register(self, unit: int, address: int, value: int) -> None:
        self.slaves[unit].registers[address] = value & 0xFFFF

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not data:
            return data
        slave = self.slaves.get(data[0]) if self._port else None
        if slave is None and self._tcp_port and len(data) > 6:
            slave = self.slaves.get(data[6])
        if sending and slave is not None:
            if slave.silent:
                return b""
            if slave.corrupt and self._port:
                return data[:-1] + bytes([data[-1] ^ 0x5A])
        return data

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as err:
            self._error = err
        finally:
            self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        # pymodbus servers must be built inside their running event loop.
        devices = [s.sim_device() for s in self.slaves.values()]
        if self._port:
            self._server = ModbusSerialServer(
                devices, port=self._port, baudrate=self._baudrate, trace_packet=self._trace
            )
        else:
            self._server = ModbusTcpServer(
                devices, address=("127.0.0.1", self._tcp_port or 0), trace_packet=self._trace
            )
        await self._server.serve_forever(background=True)

    def __enter__(self) -> ModbusEmulator:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"modbus emulator failed to start: {self._error}") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def run_line_emitter(port: str, chunks: list[bytes], *, gap_s: float = 0.01) -> Callable[[], None]:
    """Write ``chunks`` to a pty in a thread, pausing between them; returns a join function."""

    def write() -> None:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        try:
            for chunk in chunks:
                os.write(fd, chunk)
                time.sleep(gap_s)
        finally:
            os.close(fd)

    thread = threading.Thread(target=write, name="line-emitter", daemon=True)
    thread.start()
    return lambda: thread.join(10)


QUECTEL_SA = {
    'AT+QENG="servingcell"': '+QENG: "servingcell","NOCONN","NR5G-SA","TDD",460,00,1A2B3C4D5,301,5A0B,504990,41,12,-95,-11,14,1,-',
    "AT+CSQ": "+CSQ: 24,99",
    "AT+CREG?": "+CREG: 0,1",
    "AT+COPS?": '+COPS: 0,0,"CHINA MOBILE",12',
    "AT+QGDCNT?": "+QGDCNT: 123456,7890123",
}


class ModemEmulator:
    """An AT-command modem on the device end of a pty: echoes, answers from a table, ``OK``/``ERROR``.

    ``answers`` can be changed while it runs; ``silent`` stops all answers (a hung modem).
    """

    def __init__(self, port: str, answers: dict[str, str] | None = None) -> None:
        self.answers = dict(QUECTEL_SA if answers is None else answers)
        self.silent = False
        self.commands: list[str] = []
        self._fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modem-emulator", daemon=True)

    def _run(self) -> None:
        import select

        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                continue
            buffer += os.read(self._fd, 256)
            while b"\r" in buffer:
                raw, _, buffer = buffer.partition(b"\r")
                command = raw.decode(errors="replace").strip()
                if not command:
                    continue
                self.commands.append(command)
                if self.silent:
                    continue
                answer = self.answers.get(command)
                body = f"{command}\r\r\n" + (f"{answer}\r\n\r\nOK\r\n" if answer is not None else "ERROR\r\n")
                os.write(self._fd, body.encode())

    def __enter__(self) -> ModemEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self._fd)
