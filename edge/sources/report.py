"""Per-device reporting policy: report on change beyond a deadband, at least every ``max_interval``;
availability as state changes (``device.unavailable`` / ``device.available`` events), never as fake
values. A failing device produces no reading at all.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from contract.errors import ContractError
from contract.messages import Event, Reading
from contract.profiles import Scalar, SensorTypeProfile

log = logging.getLogger(__name__)

UNAVAILABLE = "device.unavailable"
AVAILABLE = "device.available"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class DeviceReporter:
    """Decides what of a device's fresh values is worth publishing, and tracks its availability."""

    device: str
    profile: SensorTypeProfile
    deadband: Mapping[str, float] = field(default_factory=dict)
    max_interval_s: float | None = None
    _last: dict[str, Scalar] = field(default_factory=dict)
    _last_report_s: float = -1e18
    available: bool | None = None  # None until the first poll: no event for a device never seen
    failures: int = 0

    def values(self, raw: Mapping[str, Scalar], now_s: float, now_ms: int) -> Reading | None:
        """A reading to publish, or None when nothing moved beyond its deadband and none is due."""
        clean: dict[str, Scalar] = {}
        for name, value in raw.items():
            try:
                clean.update(self.profile.coerce_values({name: value}))
            except ContractError as err:
                # An out-of-range value is a sensor fault, not data: it is left out, loudly.
                log.warning("device %s: dropped %s (%s)", self.device, name, err)
        if not clean:
            return None
        interval = self.max_interval_s or self.profile.expected_interval_s
        due = now_s - self._last_report_s >= interval
        if not due and not any(self._changed(k, v) for k, v in clean.items()):
            return None
        self._last.update(clean)
        self._last_report_s = now_s
        return Reading(device=self.device, ts=now_ms, values=clean)

    def _changed(self, name: str, value: Scalar) -> bool:
        old = self._last.get(name)
        if old is None or isinstance(value, bool | str) or isinstance(old, bool | str):
            return old != value
        return abs(float(value) - float(old)) > self.deadband.get(name, 0.0)

    def succeeded(self, now_ms: int) -> Event | None:
        self.failures = 0
        if self.available is True:
            return None
        was_known, self.available = self.available is not None, True
        # The first success after start is not news; recovering from unavailable is.
        return _event(self.device, AVAILABLE, now_ms, {}) if was_known else None

    def failed(self, reason: str, now_ms: int) -> Event | None:
        self.failures += 1
        if self.available is False:
            return None
        self.available = False
        # A device that comes back must be reported in full, not only what changed since before.
        self._last.clear()
        self._last_report_s = -1e18
        return _event(self.device, UNAVAILABLE, now_ms, {"reason": reason[:200]})


def _event(device: str, kind: str, now_ms: int, attrs: dict[str, Scalar]) -> Event:
    return Event(device=device, ts=now_ms, id=uuid.uuid4(), kind=kind, phase="instant", attrs=attrs)
