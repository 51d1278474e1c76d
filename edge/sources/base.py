"""The ``Source`` protocol every device source implements, built-in or an integrator's plugin.

A source owns one physical channel (an RS-485 bus, a TCP gateway, a serial port, a modem's AT port)
and every device on it. The agent calls :meth:`Source.read` in a loop, one call at a time per source;
the source paces itself (it waits until its next device is due) and returns what it read. Because only
one call is ever in flight per source, a bus has exactly one master: slaves on one port never race.

Versioned: a source declares ``api_version``; the agent refuses a source whose major version it does
not speak, with a message that names the plugin, instead of failing at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from contract.messages import DeviceEntry, Event, Reading
from contract.profiles import SensorTypeProfile
from edge.gateway_config import BusConfig, DeviceConfig

SOURCE_API_VERSION = 1
"""Bumped only for incompatible changes to :class:`Source` or :class:`SourceBatch`."""


class EdgeError(Exception):
    """Root of the edge agent's errors."""


class ConfigError(EdgeError, ValueError):
    """A gateway config or profile the agent cannot run; the message names the device and the file."""


class SourceError(EdgeError):
    """A device or channel failed to answer properly; the device is reported unavailable."""


class DeviceTimeout(SourceError):
    """No (valid) answer in time: a silent slave, a corrupted frame (bad CRC) or a cut cable."""


class DeviceRefused(SourceError):
    """The device answered with an error (e.g. a Modbus exception code)."""


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """What one ``read`` produced: readings, and availability events for devices that changed state."""

    readings: list[Reading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.readings or self.events)


@runtime_checkable
class Source(Protocol):
    """One channel and its devices. Construction validates and does no I/O; ``read`` opens lazily."""

    api_version: ClassVar[int]
    name: str

    def devices(self) -> Sequence[DeviceEntry]:
        """The devices this source reads, for the retained ``devices`` message."""
        ...

    async def read(self) -> SourceBatch:
        """Wait until something is due, read it, return it; never raises for a failing device."""
        ...

    async def aclose(self) -> None:
        """Release the port or connection; idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class BoundDevice:
    """A configured device with its sensor-type profile resolved (and where the profile came from)."""

    config: DeviceConfig
    profile: SensorTypeProfile
    origin: str = ""

    @property
    def where(self) -> str:
        return f"{self.config.id} ({self.profile.id}{', ' + self.origin if self.origin else ''})"


SourceFactory = Callable[[BusConfig, Sequence[BoundDevice]], Source]
"""What the ``yiwang.sources`` entry point names: usually the source class itself, with a class
attribute ``api_version``. It validates everything it needs (raising :class:`ConfigError`) and does no I/O.
"""

CONTRACT_SAMPLE = "contract_sample"
"""The attribute a plugin's factory carries: a function of no arguments returning a
:data:`ContractSample`. The agent builds a source from it when it loads the plugin (no I/O) and
refuses the plugin if what comes back is not a :class:`Source` listing exactly those devices.
"""

ContractSample = tuple[BusConfig, Sequence[BoundDevice]]
"""A bus of the plugin's kind and devices it can read, for the load-time contract check."""
