"""What a source that owns one serial port does on close, shared by the modem and serial-line sources.

The port is read in a worker thread (one bounded blocking call in flight at a time); closing waits for
that call before the port goes away under it, so a gateway's stop or a config reload never tears a read.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

import serial

T = TypeVar("T")


class SerialPortOwner(Generic[T]):
    _port: serial.Serial | None
    _inflight: asyncio.Future[T] | None
    _closed: bool

    def _drop_port(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None

    async def aclose(self) -> None:
        self._closed = True
        if self._inflight is not None:
            await asyncio.wait([self._inflight])
        self._drop_port()
