"""A simulated pilot community: plausible readings and camera events for every device of a gateway.

The simulator is pure and clock-injected: :meth:`GatewaySimulator.step` takes the current time and
returns what the devices report at that moment (each device at most once per step), so tests run
hours of simulated time without sleeping. All randomness comes from generators seeded by ``(seed, device)`` or
``(seed, gateway)``, so one seed and one sequence of ``step`` times give identical output.

Routine behaviour follows the device's sensor type (its profile's measurement); types this module
does not know rest inside each field's ``normal`` band (or the middle of its valid range) with a little
noise, so an integrator's new type can be simulated without code and does not alarm forever.
At a fixed period an *anomaly episode* starts on one device, rotating
through the kinds the gateway's devices support (flood, gas leak, smoke alarm, fire-lane blockage,
camera tamper), and the affected device reports every 1-2 s while it lasts. Episodes are scheduled by
their *alarm moment* (the first time the alarm condition holds), not by their start, so alarms come
exactly one period apart whatever their rise time.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, NamedTuple

from contract.catalog import Catalog, Device, Gateway
from contract.messages import Event, Reading
from contract.profiles import FieldSpec, Scalar, SensorTypeProfile

CHINA_UTC_OFFSET_H = 8.0
LEAD_MAX_MS = 20_000
"""Longest time an episode may start before its alarm moment (its rise)."""
FAST_INTERVAL_MS = (1_000, 2_000)
CAMERA_UPDATE_MS = (3_000, 5_000)
INTERVAL_JITTER = 0.05
DOOR_MEAN_CLOSED_S = 20 * 60
DAY_PEAK_HOUR = 15.0
NORMAL_FRACTION = 0.2
"""Share of a field's valid range, around its middle, a type without a ``normal`` band rests in."""


class AnomalyKind(StrEnum):
    FLOOD = "flood"
    GAS_LEAK = "gas_leak"
    SMOKE = "smoke"
    FIRE_LANE = "fire_lane"
    CAMERA_TAMPER = "camera_tamper"


_CAMERA = frozenset({AnomalyKind.FIRE_LANE, AnomalyKind.CAMERA_TAMPER})
Phase = Literal["start", "update", "end", "instant"]


# What an anomaly needs of a device: a sensor type (measurement) or, for cameras, an event kind.
_SOURCES = {
    AnomalyKind.FLOOD: "water.level",
    AnomalyKind.GAS_LEAK: "gas.combustible",
    AnomalyKind.SMOKE: "fire.smoke",
    AnomalyKind.FIRE_LANE: "camera.motion",
    AnomalyKind.CAMERA_TAMPER: "camera.tamper",
}


def _supports(kind: AnomalyKind, profile: SensorTypeProfile) -> bool:
    return profile.measurement == _SOURCES[kind] or _SOURCES[kind] in profile.events


@dataclass
class Episode:
    """One anomaly on one device: a trapezoid envelope (rise, hold, fall) scaled to ``peak``."""

    kind: AnomalyKind
    device: str
    alarm_ms: int
    begin_ms: int
    rise_ms: int
    hold_ms: int
    fall_ms: int
    peak: float
    alarm_fraction: float
    event_id: uuid.UUID
    instant: bool = False
    reason: str = ""
    sent: str | None = None
    next_update_ms: int = 0

    @property
    def end_ms(self) -> int:
        return self.begin_ms + self.rise_ms + self.hold_ms + self.fall_ms

    def active(self, now_ms: int) -> bool:
        return self.begin_ms <= now_ms <= self.end_ms

    def envelope(self, now_ms: int) -> float:
        t = now_ms - self.begin_ms
        if t < 0 or now_ms > self.end_ms:
            return 0.0
        if t < self.rise_ms:
            return t / self.rise_ms
        if t <= self.rise_ms + self.hold_ms:
            return 1.0
        return max(0.0, 1.0 - (t - self.rise_ms - self.hold_ms) / max(1, self.fall_ms))


class Shape(NamedTuple):
    """Envelope of an episode that shapes a reading; ``alarm`` is the level of the alarm moment."""

    peak: tuple[float, float]
    alarm: float
    rise_s: tuple[int, int]
    hold_s: tuple[int, int]
    fall_s: tuple[int, int]


_SHAPES = {
    AnomalyKind.FLOOD: Shape((55.0, 80.0), 51.0, (10, 20), (5, 15), (15, 30)),
    AnomalyKind.GAS_LEAK: Shape((25.0, 45.0), 21.0, (10, 20), (5, 15), (20, 40)),
    AnomalyKind.SMOKE: Shape((8.0, 15.0), 4.0, (5, 15), (5, 10), (15, 30)),
}


def plan_episode(
    kind: AnomalyKind, device: str, alarm_ms: int, baseline: float, rng: random.Random
) -> Episode:
    """An episode of ``kind`` on ``device`` whose alarm condition first holds at ``alarm_ms``."""
    event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    shape = _SHAPES.get(kind)
    if shape is None:  # a camera episode: events only, no envelope
        instant = kind is AnomalyKind.CAMERA_TAMPER and rng.random() < 0.5
        hold_ms = 0 if instant else rng.randint(10, 40) * 1000
        reason = rng.choice(["covered", "defocused", "moved"])
        return Episode(kind, device, alarm_ms, alarm_ms, 0, hold_ms, 0, 1.0, 0.0, event_id, instant, reason)
    peak = rng.uniform(*shape.peak)
    rise_ms, hold_ms, fall_ms = (rng.randint(*s) * 1000 for s in (shape.rise_s, shape.hold_s, shape.fall_s))
    fraction = (shape.alarm - baseline) / (peak - baseline)
    begin_ms = alarm_ms - int(fraction * rise_ms)
    return Episode(kind, device, alarm_ms, begin_ms, rise_ms, hold_ms, fall_ms, peak, fraction, event_id)


@dataclass
class _DeviceState:
    device: Device
    profile: SensorTypeProfile
    rng: random.Random
    next_due_ms: int
    baseline: float = 0.0
    params: dict[str, float] = field(default_factory=dict)
    drift: float = 0.0
    door_open_until_ms: int = 0
    next_door_open_ms: int = 0
    reported_open: bool | None = None


Model = Callable[["GatewaySimulator", _DeviceState, int], dict[str, Scalar]]


def _th(sim: GatewaySimulator, d: _DeviceState, now_ms: int) -> dict[str, Scalar]:
    local_h = (now_ms / 3_600_000 + sim.utc_offset_h) % 24
    cycle = d.params["amp"] * math.cos(2 * math.pi * (local_h - DAY_PEAK_HOUR) / 24)
    # Mean-reverting walk: wanders a few tenths of a degree over tens of minutes, never runs away.
    d.drift = d.drift * 0.995 + d.rng.gauss(0, 0.03)
    temperature = d.baseline + cycle + d.drift + d.rng.gauss(0, 0.08)
    humidity = d.params["hum"] - d.params["hum_k"] * (cycle + d.drift) + d.rng.gauss(0, 0.4)
    return {"temperature": round(temperature, 2), "humidity": round(min(98.0, max(5.0, humidity)), 2)}


def _above_baseline(name: str, digits: int) -> Model:
    """A value resting near the device's baseline with noise, lifted by its episodes (water, gas)."""

    def model(sim: GatewaySimulator, d: _DeviceState, now_ms: int) -> dict[str, Scalar]:
        return {name: round(max(0.0, d.baseline + d.rng.gauss(0, 0.25) + sim.lift(d, now_ms)), digits)}

    return model


def _smoke(sim: GatewaySimulator, d: _DeviceState, now_ms: int) -> dict[str, Scalar]:
    alarm = any(e.envelope(now_ms) >= e.alarm_fraction for e in sim.episodes_of(d.device.id, now_ms))
    obscuration = abs(d.rng.gauss(0, 0.05)) + sim.lift(d, now_ms)
    return {"smoke": alarm, "obscuration": round(obscuration, 3)}


def _door(sim: GatewaySimulator, d: _DeviceState, now_ms: int) -> dict[str, Scalar]:
    return {"open": d.door_open_until_ms > now_ms}


def normal_band(spec: FieldSpec) -> tuple[float, float]:
    """Where a healthy device of this field reports: its declared ``normal``, else the middle fifth of
    its valid range (a value near a limit is what rules alarm on, so the middle stays quiet)."""
    if spec.normal is not None:
        return spec.normal
    if spec.min is not None and spec.max is not None:
        low, high = spec.min, spec.max
    elif spec.min is not None:
        low, high = spec.min, spec.min + 100.0
    elif spec.max is not None:
        low, high = spec.max - 100.0, spec.max
    else:
        low, high = 0.0, 100.0
    middle, half = (low + high) / 2, (high - low) * NORMAL_FRACTION / 2
    return middle - half, middle + half


def _generic(sim: GatewaySimulator, d: _DeviceState, now_ms: int) -> dict[str, Scalar]:
    """Any type this module has no model for: a value resting in the normal band with a little noise."""
    values: dict[str, Scalar] = {}
    for name, spec in d.profile.fields.items():
        if spec.type == "bool":
            values[name] = False
            continue
        if spec.type == "string":
            values[name] = "ok"
            continue
        low, high = normal_band(spec)
        key = f"rest:{name}"
        if key not in d.params:  # where this device rests, drawn once: devices differ, each is steady
            d.params[key] = d.rng.uniform(low + (high - low) / 4, high - (high - low) / 4)
        rest = d.params[key]
        number = min(high, max(low, rest + d.rng.gauss(0, (high - low) / 20)))
        if spec.type == "int":
            # Rounding must not step out of the band: the nearest integer inside it.
            values[name] = min(math.floor(high), max(math.ceil(low), round(number)))
        else:
            values[name] = round(number, 2)
    return values


_MODELS: dict[str, Model] = {
    "env.th": _th,
    "water.level": _above_baseline("level_cm", 1),
    "gas.combustible": _above_baseline("lel_pct", 2),
    "fire.smoke": _smoke,
    "access.door": _door,
}


def _clamp(profile: SensorTypeProfile, values: dict[str, Scalar]) -> dict[str, Scalar]:
    """Keep simulated physics inside the profile's valid range, as a real probe saturates."""
    for name, value in values.items():
        spec = profile.fields[name]
        if isinstance(value, float):
            low = spec.min if spec.min is not None else -math.inf
            high = spec.max if spec.max is not None else math.inf
            values[name] = min(high, max(low, value))
    return values


class GatewaySimulator:
    """Every device of one gateway, advanced by :meth:`step`; pure apart from its own seeded state."""

    def __init__(
        self,
        community: str,
        gateway: Gateway,
        profiles: Mapping[str, SensorTypeProfile],
        *,
        seed: int = 0,
        anomaly_period_s: float = 45.0,
        utc_offset_h: float = CHINA_UTC_OFFSET_H,
    ) -> None:
        if anomaly_period_s <= 0:
            raise ValueError("anomaly_period_s must be positive")
        self.community = community
        self.gateway = gateway.id
        self.utc_offset_h = utc_offset_h
        self.period_ms = int(anomaly_period_s * 1000)
        self._devices = [
            _DeviceState(d, profiles[d.type], random.Random(f"{seed}:{community}:{d.id}"), 0)
            for d in gateway.devices
        ]
        self._rng = random.Random(f"{seed}:{community}:{gateway.id}:anomalies")
        kinds = [k for k in AnomalyKind if any(_supports(k, d.profile) for d in self._devices)]
        self._rng.shuffle(kinds)
        self.rotation: tuple[AnomalyKind, ...] = tuple(kinds)
        self.episodes: list[Episode] = []
        self._origin_ms: int | None = None
        self._next_alarm_ms = 0
        self._count = 0

    def _start(self, now_ms: int) -> None:
        self._origin_ms = now_ms
        self._next_alarm_ms = now_ms + LEAD_MAX_MS
        for d in self._devices:
            p = d.params
            interval_ms = d.profile.expected_interval_s * 1000
            d.next_due_ms = now_ms + int(d.rng.uniform(0, interval_ms))
            d.baseline = {
                "env.th": d.rng.uniform(16, 24),
                "water.level": d.rng.uniform(1, 5),
                "gas.combustible": d.rng.uniform(0.2, 1.5),
            }.get(d.profile.measurement, 0.0)
            p.update(amp=d.rng.uniform(2.0, 5.0), hum=d.rng.uniform(45, 65), hum_k=d.rng.uniform(2.0, 3.5))
            d.next_door_open_ms = now_ms + int(d.rng.expovariate(1 / DOOR_MEAN_CLOSED_S) * 1000)

    def _plan(self, now_ms: int) -> None:
        if not self.rotation:
            return
        if now_ms - self._next_alarm_ms > 10 * self.period_ms:
            # A long pause (suspended host): skip the missed episodes instead of replaying them all.
            self._next_alarm_ms += (now_ms - self._next_alarm_ms) // self.period_ms * self.period_ms
        while self._next_alarm_ms - LEAD_MAX_MS <= now_ms:
            kind = self.rotation[self._count % len(self.rotation)]
            candidates = [d for d in self._devices if _supports(kind, d.profile)]
            target = self._rng.choice(candidates)
            self.episodes.append(
                plan_episode(kind, target.device.id, self._next_alarm_ms, target.baseline, self._rng)
            )
            self._next_alarm_ms += self.period_ms
            self._count += 1

    def episodes_of(self, device: str, now_ms: int) -> list[Episode]:
        return [e for e in self.episodes if e.device == device and e.active(now_ms)]

    def lift(self, d: _DeviceState, now_ms: int) -> float:
        """How far the active episodes push a device's main value above its baseline."""
        return max(
            (e.envelope(now_ms) * (e.peak - d.baseline) for e in self.episodes_of(d.device.id, now_ms)),
            default=0.0,
        )

    def step(self, now_ms: int) -> tuple[list[Reading], list[Event]]:
        """What the gateway's devices report at ``now_ms`` (epoch ms, non-decreasing between calls)."""
        if self._origin_ms is None:
            self._start(now_ms)
        self._plan(now_ms)
        readings = [r for d in self._devices if (r := self._reading(d, now_ms)) is not None]
        events = [e for ep in self.episodes for e in self._camera_events(ep, now_ms)]
        # Forget finished episodes once their events are out; keep the list short.
        self.episodes = [
            e for e in self.episodes if e.end_ms >= now_ms or (e.kind in _CAMERA and e.sent != "end")
        ]
        return readings, events

    def _reading(self, d: _DeviceState, now_ms: int) -> Reading | None:
        model = _MODELS.get(d.profile.measurement, _generic)
        if not d.profile.fields:
            return None
        if model is _door and now_ms >= d.next_door_open_ms:
            d.door_open_until_ms = now_ms + d.rng.randint(5, 90) * 1000
            d.next_door_open_ms = d.door_open_until_ms + int(d.rng.expovariate(1 / DOOR_MEAN_CLOSED_S) * 1000)
        fast = bool(self.episodes_of(d.device.id, now_ms))
        changed = model is _door and d.reported_open != (d.door_open_until_ms > now_ms)
        if fast and d.next_due_ms - now_ms > FAST_INTERVAL_MS[1]:
            d.next_due_ms = now_ms
        if now_ms < d.next_due_ms and not changed:
            return None
        if fast:
            d.next_due_ms = now_ms + d.rng.randint(*FAST_INTERVAL_MS)
        else:
            jitter = d.rng.uniform(1 - INTERVAL_JITTER, 1 + INTERVAL_JITTER)
            d.next_due_ms = now_ms + int(d.profile.expected_interval_s * 1000 * jitter)
        values = _clamp(d.profile, model(self, d, now_ms))
        if model is _door:
            d.reported_open = bool(values["open"])
        return Reading(device=d.device.id, ts=now_ms, values=values)

    def _camera_events(self, ep: Episode, now_ms: int) -> list[Event]:
        if ep.kind not in _CAMERA or now_ms < ep.begin_ms or ep.sent == "end":
            return []
        phases: list[Phase] = ["start"] if ep.sent is None else []
        if ep.instant:
            phases = ["instant"]
        elif now_ms >= ep.end_ms:
            phases.append("end")
        elif ep.kind is AnomalyKind.FIRE_LANE and ep.sent is not None and now_ms >= ep.next_update_ms:
            phases.append("update")
        if not phases:
            return []
        ep.sent = "end" if ep.instant else phases[-1]
        ep.next_update_ms = now_ms + self._rng.randint(*CAMERA_UPDATE_MS)
        attrs: dict[str, Scalar] = {"reason": ep.reason}
        kind = "camera.tamper"
        if ep.kind is AnomalyKind.FIRE_LANE:
            kind = "camera.motion"
            attrs = {"zone": "fire-lane", "score": round(self._rng.uniform(0.6, 0.95), 2)}
        return [
            Event(device=ep.device, ts=now_ms, id=ep.event_id, kind=kind, phase=phase, attrs=attrs)
            for phase in phases
        ]


def simulators_for(
    catalog: Catalog, community: str, *, seed: int = 0, anomaly_period_s: float = 45.0
) -> dict[str, GatewaySimulator]:
    """One simulator per gateway of ``community``, keyed by gateway id."""
    found = catalog.communities.get(community)
    if found is None:
        known = ", ".join(sorted(catalog.communities)) or "none"
        raise ValueError(f"unknown community {community!r} (configured: {known})")
    return {
        gw.id: GatewaySimulator(community, gw, catalog.profiles, seed=seed, anomaly_period_s=anomaly_period_s)
        for gw in found.gateways
    }
