"""The alerts benchmark's scenario: a community's background series and a schedule of injections.

Deterministic and free of servers, so the same series can be fed to the engine in-process (tests) or
published to a real broker (the benchmark). Time is counted in ticks: every sensor reports once a
tick (``hz`` ticks a second), tick ``k`` is scenario time ``k / hz`` seconds.

The background is meant to trip a wrong rule: water levels drift and follow a daily rhythm (a day
compressed into ``RHYTHM_PERIOD_S``), some basements hover just under the flooding level and now and
then rise towards it and turn back, gas detectors throw the odd single outlier above the alarm level
(an N-of-M or a `for` must absorb it), cameras see motion in zones no rule watches. Each injection
is one incident of one rule kind, on a device of its own, with the moment its alert becomes due.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Kind = Literal["threshold", "n_of_m", "rate", "anomaly", "deadman", "event"]
KINDS: tuple[Kind, ...] = ("threshold", "n_of_m", "rate", "anomaly", "deadman", "event")
COMMUNITY = "bench"
RULE_OF: dict[Kind, str] = {kind: f"bench-{kind.replace('_', '-')}" for kind in KINDS}
KIND_OF_RULE: dict[str, Kind] = {rule: kind for kind, rule in RULE_OF.items()}

# The rules, shaped like the shipped ones (config/rules/*.yaml).
FLOOD_CM, FLOOD_CLEAR_CM = 50.0, 40.0
RATE_PER_MIN = 10.0
GAS_ALARM_PCT, GAS_CLEAR_PCT = 20.0, 10.0
N_OF_M = (3, 5)
MAD_THRESHOLD, MAD_MIN_SPREAD = 8.0, 0.5
STALE_FACTOR, WATER_INTERVAL_S = 6.0, 5.0  # water.level@1 reports every 5 s by its profile
FIRE_LANE = "fire-lane"

# The background.
RHYTHM_PERIOD_S = 600.0
WATER_RHYTHM_CM, GAS_RHYTHM_PCT = 1.5, 0.4
WATER_NOISE_CM, GAS_NOISE_PCT = 0.3, 0.2
WATER_DRIFT_CM_PER_H, GAS_DRIFT_PCT_PER_H = 3.0, 1.0
NEAR_PEAK_CM = 48.5  # how close a hovering basement comes to the flooding level before it turns back
NEAR_EVERY_S, NEAR_WIDTH_S = 90.0, 40.0
OUTLIER_EVERY_S = 40.0
MOTION_EVERY_S = 5.0
QUIET_AROUND_S = 3.0  # no outlier this close to a device's own injection: its alert stays unambiguous
NOISE_TABLE = (997, 1009)  # two prime-length tables: noise that does not repeat within a run


@dataclass(frozen=True, slots=True)
class Plan:
    """The size and timing of a run; the defaults are the full benchmark (10,200 readings a second)."""

    gateways: int = 10
    water_per_gateway: int = 62
    gas_per_gateway: int = 40
    cameras_per_gateway: int = 5
    hz: float = 10.0
    per_kind: int = 100
    warmup_s: float = 75.0  # windows fill and baselines settle before the first injection
    spread_s: float = 120.0  # injections start spread over this span
    tail_s: float = 20.0  # background after the last injection has ended
    rate_window_s: float = 60.0
    mad_window_s: float = 60.0
    anomaly_for_s: float = 10.0
    stale_min_s: float = 30.0
    seed: int = 7

    def __post_init__(self) -> None:
        water, gas, cameras = (
            self.gateways * self.water_per_gateway,
            self.gateways * self.gas_per_gateway,
            self.gateways * self.cameras_per_gateway,
        )
        if water < 3 * self.per_kind or gas < 2 * self.per_kind or 2 * cameras < self.per_kind:
            raise ValueError(
                f"{self.per_kind} injections per kind need {3 * self.per_kind} water sensors, "
                f"{2 * self.per_kind} gas detectors and {math.ceil(self.per_kind / 2)} cameras"
            )
        if self.warmup_s < max(self.rate_window_s, self.mad_window_s) / 2 + 5:
            raise ValueError("warmup_s must cover half the rate and anomaly windows")

    @property
    def stale_s(self) -> float:
        return max(STALE_FACTOR * WATER_INTERVAL_S, self.stale_min_s)

    @property
    def near_amplitude_cm(self) -> float:
        """A hovering basement's rise: kept below what the rate rule could mistake for a flood, even
        judged on the shortest span it decides on (half its window)."""
        window_min = self.rate_window_s / 60 / 2
        margin = RATE_PER_MIN - 2 * 2 * WATER_NOISE_CM / window_min - _rhythm_slope() - 1.5
        return max(0.5, min(7.0, margin * window_min))


def _rhythm_slope() -> float:
    """The steepest the daily rhythm gets, cm/min."""
    return 2 * math.pi * WATER_RHYTHM_CM / (RHYTHM_PERIOD_S / 60)


def rules(plan: Plan) -> list[dict[str, Any]]:
    """One rule per kind, as YAML would give them."""
    water, gas, camera = "water.level@1", "gas.combustible@1", "camera.events@1"
    base: dict[str, Any] = {"version": 1, "severity": "critical"}
    return [
        base
        | {
            "id": RULE_OF["threshold"],
            "scope": {"type": water},
            "category": "flooding",
            "threshold": {"field": "level_cm", "op": ">=", "value": FLOOD_CM, "clear": FLOOD_CLEAR_CM},
        },
        base
        | {
            "id": RULE_OF["rate"],
            "scope": {"type": water},
            "category": "flooding",
            "severity": "warning",
            "rate": {
                "field": "level_cm",
                "window_s": plan.rate_window_s,
                "op": ">=",
                "per_minute": RATE_PER_MIN,
            },
        },
        base
        | {
            "id": RULE_OF["deadman"],
            "scope": {"type": water},
            "category": "device_offline",
            "stale": {"factor": STALE_FACTOR, "min_s": plan.stale_min_s},
        },
        base
        | {
            "id": RULE_OF["n_of_m"],
            "scope": {"type": gas},
            "category": "gas_leak",
            "threshold": {
                "field": "lel_pct",
                "op": ">=",
                "value": GAS_ALARM_PCT,
                "clear": GAS_CLEAR_PCT,
                "n_of_m": {"n": N_OF_M[0], "m": N_OF_M[1]},
            },
        },
        base
        | {
            "id": RULE_OF["anomaly"],
            "scope": {"type": gas},
            "category": "gas_leak",
            "severity": "warning",
            "anomaly": {
                "field": "lel_pct",
                "method": "mad",
                "window": round(plan.mad_window_s * plan.hz),
                "warmup": round(plan.mad_window_s * plan.hz / 2),
                "threshold": MAD_THRESHOLD,
                "min_spread": MAD_MIN_SPREAD,
            },
            "for_s": plan.anomaly_for_s,
        },
        base
        | {
            "id": RULE_OF["event"],
            "scope": {"type": camera},
            "category": "fire_lane_blocked",
            "severity": "warning",
            "event": {"kind": "camera.motion", "attrs": {"zone": FIRE_LANE}},
        },
    ]


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    gateway: str
    grid: str
    type: Literal["water", "gas", "camera"]


@dataclass(frozen=True, slots=True)
class Injection:
    kind: Kind
    device: str
    start_s: float  # the incident begins
    end_s: float  # the device is back to its background
    due_s: float  # scenario time of the reading (or, for a deadman, the last reading) that makes it due
    due_after_s: float = 0.0  # a deadman is due this long after its last reading

    @property
    def rule(self) -> str:
        return RULE_OF[self.kind]


@dataclass
class _Series:
    """One sensor's background parameters and, when it has one, its injection."""

    device: Device
    base: float
    drift_per_s: float
    phase: float
    noise: tuple[list[float], list[float]]
    near: bool = False  # hovers under the flooding level
    near_offset_s: float = 0.0
    outlier_period: int = 0
    outlier_offset: int = 0
    injection: Injection | None = None


@dataclass
class Scenario:
    plan: Plan
    devices: list[Device] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    _series: dict[str, _Series] = field(default_factory=dict)
    _camera_offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    _events_at: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    _gateway_of: dict[str, str] = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        last_end = max((i.end_s for i in self.injections), default=self.plan.warmup_s + self.plan.spread_s)
        return math.ceil((last_end + self.plan.tail_s) * self.plan.hz)

    def tick_of(self, seconds: float) -> int:
        return math.ceil(seconds * self.plan.hz - 1e-9)

    def readings(self, tick: int) -> dict[str, list[tuple[str, str, float]]]:
        """Per gateway, the (device, field, value) reported at ``tick`` (silent devices left out)."""
        out: dict[str, list[tuple[str, str, float]]] = {}
        t = tick / self.plan.hz
        for series in self._series.values():
            value = self._value(series, tick, t)
            if value is not None:
                name = "level_cm" if series.device.type == "water" else "lel_pct"
                out.setdefault(series.device.gateway, []).append((series.device.id, name, value))
        return out

    def events(self, tick: int) -> dict[str, list[tuple[str, str]]]:
        """Per gateway, the (camera, zone) motion events seen at ``tick``."""
        out: dict[str, list[tuple[str, str]]] = {}
        for camera, (period, offset) in self._camera_offsets.items():
            if (tick + offset) % period == 0:
                out.setdefault(self._gateway_of[camera], []).append((camera, "corridor"))
        for camera, zone in self._events_at.get(tick, []):
            out.setdefault(self._gateway_of[camera], []).append((camera, zone))
        return out

    def _value(self, s: _Series, tick: int, t: float) -> float | None:
        inj = s.injection
        if inj is not None and inj.start_s <= t < inj.end_s and inj.kind == "deadman":
            return None
        noise = (s.noise[0][tick % NOISE_TABLE[0]] + s.noise[1][tick % NOISE_TABLE[1]]) / 2
        if s.device.type == "water":
            level = (
                s.base
                + s.drift_per_s * t
                + WATER_RHYTHM_CM * math.sin(2 * math.pi * t / RHYTHM_PERIOD_S + s.phase)
                + WATER_NOISE_CM * noise
            )
            if s.near:
                level += self.plan.near_amplitude_cm * _bump((t + s.near_offset_s) % NEAR_EVERY_S)
            if inj is not None and t >= inj.start_s:
                level = _water_incident(self.plan, inj, level, noise, t)
            return round(max(0.0, level), 2)
        lel = (
            s.base
            + s.drift_per_s * t
            + GAS_RHYTHM_PCT * math.sin(2 * math.pi * t / RHYTHM_PERIOD_S + s.phase)
            + GAS_NOISE_PCT * noise
        )
        if inj is not None and inj.start_s <= t < inj.end_s:
            lel += (GAS_ALARM_PCT + 6.0) if inj.kind == "n_of_m" else 9.0
        elif (tick + s.outlier_offset) % s.outlier_period == 0 and not _near_injection(inj, t):
            lel = GAS_ALARM_PCT + 2.0 + 8.0 * abs(noise)  # one sample far above the alarm level
        return round(max(0.0, lel), 2)


def _bump(x: float) -> float:
    """A raised cosine 0 → 1 → 0 over NEAR_WIDTH_S, zero after."""
    if x >= NEAR_WIDTH_S:
        return 0.0
    return (1 - math.cos(2 * math.pi * x / NEAR_WIDTH_S)) / 2


def _near_injection(inj: Injection | None, t: float) -> bool:
    return inj is not None and inj.start_s - QUIET_AROUND_S <= t < inj.end_s + QUIET_AROUND_S


# A flooding incident: the basement fills slowly (too slowly for the rate rule), crosses the flooding
# level, falls back into the hysteresis band, touches the level once more and drains.
THRESHOLD_PEAK_CM, THRESHOLD_HOLD_S, BAND_CM, BAND_S, RETOUCH_CM, DRAINED_CM = (
    52.5,
    10.0,
    45.0,
    8.0,
    51.0,
    36.0,
)
# A fast rise: twice the rate rule's limit, stopping well below the flooding level.
RATE_RAMP_PER_MIN, RATE_HOLD_S = 2 * RATE_PER_MIN, 10.0


def _threshold_slope(plan: Plan) -> float:
    """cm/s of a slow flood: well under the rate rule's limit, noise and rhythm included."""
    window_min = plan.rate_window_s / 60
    return max(1.0, RATE_PER_MIN - 2 * 2 * WATER_NOISE_CM / window_min - _rhythm_slope() - 1.0) / 60


def _rate_ramp_s(plan: Plan) -> float:
    return max(10.0, 0.75 * plan.rate_window_s)  # the rule is due half a window in


def _water_incident(plan: Plan, inj: Injection, level: float, noise: float, t: float) -> float:
    dt = t - inj.start_s
    if inj.kind == "threshold":
        # Filling until the peak, then the phases after it, counted back from the end.
        drained_at = inj.end_s - 2.0
        retouch_at = drained_at - 1.0
        band_at = retouch_at - BAND_S
        peak_at = band_at - THRESHOLD_HOLD_S
        if t < peak_at:
            return min(THRESHOLD_PEAK_CM, level + _threshold_slope(plan) * dt)
        if t < band_at:
            return THRESHOLD_PEAK_CM
        if t < retouch_at:
            return BAND_CM
        if t < drained_at:
            return RETOUCH_CM
        return DRAINED_CM + WATER_NOISE_CM * noise  # drained: it stays so to the end of the run
    if inj.kind == "rate":
        ramp_s = _rate_ramp_s(plan)
        rise = RATE_RAMP_PER_MIN / 60 * min(dt, ramp_s)
        if dt < ramp_s + RATE_HOLD_S:
            return level + rise
        return level + max(0.0, rise - RATE_RAMP_PER_MIN / 60 * (dt - ramp_s - RATE_HOLD_S))
    return level


def build(plan: Plan) -> Scenario:
    """The community, the background of every sensor and the schedule, all from ``plan.seed``."""
    rng = random.Random(plan.seed)
    scenario = Scenario(plan)
    water: list[Device] = []
    gas: list[Device] = []
    cameras: list[Device] = []
    for g in range(plan.gateways):
        gateway = f"gw-{g:02d}"
        for i in range(plan.water_per_gateway):
            water.append(Device(f"wl-{g:02d}{i:02d}", gateway, f"g-{i % 10:02d}", "water"))
        for i in range(plan.gas_per_gateway):
            gas.append(Device(f"gs-{g:02d}{i:02d}", gateway, f"g-{i % 10:02d}", "gas"))
        for i in range(plan.cameras_per_gateway):
            cameras.append(Device(f"cam-{g:02d}{i:02d}", gateway, f"g-{i % 10:02d}", "camera"))
    scenario.devices = water + gas + cameras
    scenario._gateway_of = {d.id: d.gateway for d in scenario.devices}
    hz = plan.hz

    def noise() -> tuple[list[float], list[float]]:
        return tuple([rng.uniform(-1, 1) for _ in range(n)] for n in NOISE_TABLE)  # type: ignore[return-value]

    def start(k: int) -> float:
        return plan.warmup_s + plan.spread_s * (k + rng.random()) / max(1, plan.per_kind)

    shuffled_water = rng.sample(water, len(water))
    roles: dict[str, Kind | None] = {d.id: None for d in water + gas}
    for index, kind in enumerate(("threshold", "rate", "deadman")):
        for d in shuffled_water[index * plan.per_kind : (index + 1) * plan.per_kind]:
            roles[d.id] = kind  # type: ignore[assignment]
    shuffled_gas = rng.sample(gas, len(gas))
    for index, kind in enumerate(("n_of_m", "anomaly")):
        for d in shuffled_gas[index * plan.per_kind : (index + 1) * plan.per_kind]:
            roles[d.id] = kind  # type: ignore[assignment]

    counters: dict[str, int] = {}
    for d in water:
        role = roles[d.id]
        near = role == "threshold" or (role is None and rng.random() < 0.4)
        base = rng.uniform(45.5, 46.5) if role == "threshold" else rng.uniform(8.0, 14.0)
        if near and role is None:
            base = NEAR_PEAK_CM - plan.near_amplitude_cm - WATER_RHYTHM_CM - 1.0
        series = _Series(
            d,
            base,
            rng.uniform(-1, 1) * WATER_DRIFT_CM_PER_H / 3600,
            rng.uniform(0, 2 * math.pi),
            noise(),
            near=near and role is None,
            near_offset_s=rng.uniform(0, NEAR_EVERY_S),
        )
        scenario._series[d.id] = series
        if role is not None:
            k = counters[role] = counters.get(role, -1) + 1
            series.injection = _schedule(scenario, series, role, start(k))
    for d in gas:
        role = roles[d.id]
        period = round(rng.uniform(0.7, 1.3) * OUTLIER_EVERY_S * hz)
        series = _Series(
            d,
            rng.uniform(0.5, 3.0),
            rng.uniform(-1, 1) * GAS_DRIFT_PCT_PER_H / 3600,
            rng.uniform(0, 2 * math.pi),
            noise(),
            outlier_period=period,
            outlier_offset=rng.randrange(period),
        )
        scenario._series[d.id] = series
        if role is not None:
            k = counters[role] = counters.get(role, -1) + 1
            series.injection = _schedule(scenario, series, role, start(k))
    for d in cameras:
        period = round(rng.uniform(0.6, 1.4) * MOTION_EVERY_S * hz)
        scenario._camera_offsets[d.id] = (period, rng.randrange(period))
    for k in range(plan.per_kind):
        camera = cameras[k % len(cameras)]
        tick = scenario.tick_of(start(k))
        t = tick / hz
        scenario._events_at.setdefault(tick, []).append((camera.id, FIRE_LANE))
        scenario.injections.append(Injection("event", camera.id, t, t + 1.0, t))
    scenario.injections.sort(key=lambda i: (i.due_s, i.device))
    return scenario


def _schedule(scenario: Scenario, series: _Series, kind: Kind, start_s: float) -> Injection:
    plan = scenario.plan
    start_s = scenario.tick_of(start_s) / plan.hz
    if kind == "deadman":
        # Due `stale_s` after the last reading before the silence.
        last = (scenario.tick_of(start_s) - 1) / plan.hz
        injection = Injection(
            kind, series.device.id, start_s, start_s + plan.stale_s + 8.0, last, plan.stale_s
        )
    elif kind == "n_of_m":
        due = start_s + (N_OF_M[0] - 1) / plan.hz  # the n-th breaching sample
        injection = Injection(kind, series.device.id, start_s, start_s + 4.0, due)
    elif kind == "anomaly":
        # Due `for_s` after its first anomalous sample, by a later sample or by the engine's timer.
        end = start_s + plan.anomaly_for_s + 6.0
        injection = Injection(kind, series.device.id, start_s, end, start_s, plan.anomaly_for_s)
    elif kind == "threshold":
        # Long enough to fill from the base to the peak; due at the first sample at the flooding level.
        fill_s = (THRESHOLD_PEAK_CM - series.base + WATER_RHYTHM_CM + 1.0) / _threshold_slope(plan)
        end = start_s + fill_s + THRESHOLD_HOLD_S + BAND_S + 1.0 + 2.0
        series.injection = Injection(kind, series.device.id, start_s, end, 0.0)
        due = _first(scenario, series, start_s, end, lambda _k, v: v >= FLOOD_CM)
        injection = Injection(kind, series.device.id, start_s, end, due)
    else:  # rate
        end = start_s + 2 * _rate_ramp_s(plan) + RATE_HOLD_S + 2.0  # up, hold, drained as fast
        series.injection = injection = Injection(kind, series.device.id, start_s, end, 0.0)
        ideal = [round(k * 1000 / plan.hz) for k in range(scenario.tick_of(end) + 1)]
        injection = rate_due(scenario, injection, ideal)
    series.injection = injection
    scenario.injections.append(injection)
    return injection


def rate_due(scenario: Scenario, injection: Injection, ts_ms: Sequence[int]) -> Injection:
    """A rate injection with the moment it became due on the timestamps its readings carried
    (``ts_ms[k]`` for tick ``k``): which sample is the oldest in the window depends on them.

    The rule's own definition: the change since the oldest sample within the window, per minute,
    judged once the window spans at least half its length.
    """
    plan, series = scenario.plan, scenario._series[injection.device]
    window_ms = plan.rate_window_s * 1000
    for k in range(scenario.tick_of(injection.start_s), min(len(ts_ms), scenario.tick_of(injection.end_s))):
        first = bisect.bisect_left(ts_ms, ts_ms[k] - window_ms, 0, k)
        span_ms = ts_ms[k] - ts_ms[first]
        now, then = scenario._value(series, k, k / plan.hz), scenario._value(series, first, first / plan.hz)
        if now is None or then is None or span_ms < window_ms / 2:
            continue
        if (now - then) / (span_ms / 60_000) >= RATE_PER_MIN:
            return dataclasses.replace(injection, due_s=k / plan.hz)
    raise ValueError(f"{injection} never becomes due")  # a scenario bug


def _first(
    scenario: Scenario, series: _Series, start_s: float, end_s: float, hit: Callable[[int, float], bool]
) -> float:
    hz = scenario.plan.hz
    for k in range(scenario.tick_of(start_s), scenario.tick_of(end_s)):
        v = scenario._value(series, k, k / hz)
        if v is not None and hit(k, v):
            return k / hz
    raise ValueError(f"{series.device.id}: its {series.injection} never becomes due")  # a scenario bug


def write_config(source: Path, target: Path, scenario: Scenario) -> None:
    """The bench community and rules beside the shipped sensor types and categories."""
    for sub in ("sensor-types",):
        (target / sub).mkdir(parents=True, exist_ok=True)
        for path in (source / sub).glob("*.yaml"):
            (target / sub / path.name).write_text(path.read_text())
    for name in ("categories.yaml", "calendar.yaml", "organisation.yaml"):  # what the case policy loads
        (target / name).write_text((source / name).read_text())
    (target / "communities").mkdir(exist_ok=True)
    (target / "rules").mkdir(exist_ok=True)
    types = {"water": "water.level@1", "gas": "gas.combustible@1", "camera": "camera.events@1"}
    gateways: dict[str, list[dict[str, str]]] = {}
    for d in scenario.devices:
        gateways.setdefault(d.gateway, []).append({"id": d.id, "type": types[d.type], "grid": d.grid})
    community = {
        "id": COMMUNITY,
        "name": COMMUNITY,
        "grids": [{"id": f"g-{g:02d}", "name": f"grid {g}"} for g in range(10)],
        "gateways": [{"id": gw, "devices": devices} for gw, devices in gateways.items()],
    }
    (target / "communities" / f"{COMMUNITY}.yaml").write_text(yaml.safe_dump(community))
    (target / "rules" / "bench.yaml").write_text(yaml.safe_dump({"rules": rules(scenario.plan)}))


# -- accounting -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert that fired (its case committed), on the clock of the run that saw it."""

    rule: str
    subject: str
    at: float  # seconds


@dataclass
class KindTally:
    injected: int = 0
    detected: int = 0
    missed: int = 0
    false_alerts: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # a miss is math.inf
    false: list[Firing] = field(default_factory=list)


def account(
    injections: Iterable[Injection],
    firings: Iterable[Firing],
    to_clock: Callable[[float], float] = lambda s: s,
    *,
    grace_s: float = 5.0,
) -> dict[Kind, KindTally]:
    """Match firings to injections: the first firing of an injection's rule on its device within its
    span detects it; every other firing (another device, another rule, a second firing) is false.

    ``to_clock`` maps scenario seconds onto the clock of ``Firing.at``.
    """
    tally: dict[Kind, KindTally] = {kind: KindTally() for kind in KINDS}
    open_: dict[tuple[str, str], list[Injection]] = {}
    for inj in sorted(injections, key=lambda i: i.start_s):
        open_.setdefault((inj.rule, inj.device), []).append(inj)
        tally[inj.kind].injected += 1
    found: set[int] = set()
    for firing in sorted(firings, key=lambda f: f.at):
        kind = KIND_OF_RULE.get(firing.rule)
        candidates = open_.get((firing.rule, firing.subject), [])
        match = next(
            (
                inj
                for inj in candidates
                if id(inj) not in found
                and to_clock(inj.start_s) <= firing.at <= to_clock(inj.end_s) + grace_s
            ),
            None,
        )
        if match is None:
            if kind is not None:
                tally[kind].false_alerts += 1
                tally[kind].false.append(firing)
            continue
        found.add(id(match))
        due = to_clock(match.due_s) + match.due_after_s
        tally[match.kind].detected += 1
        tally[match.kind].latencies_ms.append(max(0.0, (firing.at - due) * 1000))
    for t in tally.values():
        t.missed = t.injected - t.detected
        t.latencies_ms.extend([math.inf] * t.missed)
    return tally


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest rank; None when there is nothing or the rank falls on a miss (beyond any limit)."""
    if not samples:
        return None
    ordered = sorted(samples)
    value = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    return None if math.isinf(value) else round(value, 1)


def firings_from_fingerprints(rows: Iterable[tuple[str, str, float]]) -> list[Firing]:
    """(fingerprint ``rule|community|subject``, rule, at) rows as firings."""
    return [Firing(rule, fp.split("|", 2)[2], at) for fp, rule, at in rows]
