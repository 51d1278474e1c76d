"""Table-driven scenarios: a series in, the exact alert transitions out, per condition type."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.conditions import _median, _median_abs_deviation
from tests.alerts.scenario import Scenario, kinds, rule, series_of

LEVEL = {"field": "level_cm"}


@pytest.mark.parametrize(
    ("name", "spec", "steps", "expected"),
    [
        (
            "threshold with hysteresis: the clear band holds",
            {"threshold": {**LEVEL, "op": ">=", "value": 50, "clear": 40}},
            [(0, 49.9), (5, 50), (10, 72), (15, 45), (20, 40), (25, 39.9)],
            [(5, "firing"), (25, "resolved")],
        ),
        (
            "pending: fires once the condition held for_s",
            {"threshold": {**LEVEL, "op": ">=", "value": 50}, "for_s": 30},
            [(0, 60), (20, 61), (29, 62), (30, 63), (35, 10)],
            [(0, "pending"), (30, "firing"), (35, "resolved")],
        ),
        (
            "pending just short of for_s never fires",
            {"threshold": {**LEVEL, "op": ">=", "value": 50}, "for_s": 30},
            [(0, 60), (29, 60), (29.5, 10), (40, 10)],
            [(0, "pending"), (29.5, "cancelled")],
        ),
        (
            "n of m samples",
            {"threshold": {**LEVEL, "op": ">=", "value": 50, "n_of_m": {"n": 3, "m": 5}}},
            [(0, 60), (5, 10), (10, 60), (15, 10), (20, 60), (25, 10), (30, 10), (35, 10)],
            [(20, "firing"), (25, "resolved")],  # resolves once fewer than n of the last m breach
        ),
        (
            "rate of change: rising 12 cm/min over a 60 s window",
            {"rate": {**LEVEL, "window_s": 60, "op": ">=", "per_minute": 5}},
            [(s, 10 + s / 5) for s in range(0, 65, 5)] + [(s, 23.0) for s in range(70, 140, 5)],
            [(30, "firing"), (115, "resolved")],  # once the rate is under half its limit: 2 cm/min
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_sample_conditions(
    name: str, spec: dict[str, object], steps: list[tuple[float, float]], expected: list[tuple[float, str]]
) -> None:
    scenario = Scenario([rule(scope={"device": "wl-01"}, **spec)])
    assert series_of(scenario, steps) == expected


def test_a_rise_that_hovers_at_the_rate_limit_fires_once() -> None:
    """Water rising at just about the limit measures a little above it, then a little below, sample
    after sample: one alert, not one per crossing (which would open a case each, then flap)."""
    rng = random.Random(5)
    rising = [(s * 1.0, s / 6 + rng.uniform(-0.5, 0.5)) for s in range(0, 600, 5)]
    steady = [(600.0 + s, 100 + rng.uniform(-0.5, 0.5)) for s in range(0, 300, 5)]
    scenario = Scenario([rule(rate={**LEVEL, "window_s": 60, "op": ">=", "per_minute": 10})])
    assert [kind for _, kind in series_of(scenario, rising + steady)] == ["firing", "resolved"]


def test_pending_fires_on_the_timer_between_samples() -> None:
    """wl-01 reports every 5 s: with its last sample 6 s old the series is live, so the timer fires
    (a series silent for longer does not: tests/alerts/test_silent_series.py)."""
    scenario = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=20)])
    assert kinds(scenario.reading(0, level_cm=60)) == ["pending"]
    for seconds in (5, 10, 15):
        assert kinds(scenario.reading(seconds, level_cm=60)) == []
    assert kinds(scenario.tick(19)) == []
    assert kinds(scenario.tick(21)) == ["firing"]


def noisy(n: int, mean: float, spread: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [mean + rng.uniform(-spread, spread) for _ in range(n)]


@pytest.mark.parametrize("method", ["mad", "ewma"])
def test_anomaly_warms_up_then_catches_a_spike_and_recovers(method: str) -> None:
    scenario = Scenario(
        [
            rule(
                anomaly={
                    **LEVEL,
                    "method": method,
                    "window": 60,
                    "warmup": 30,
                    "threshold": 6,
                    "alpha": 0.05,
                    "min_spread": 0.2,
                }
            )
        ]
    )
    values = [*noisy(20, 20, 0.5), 80.0]  # a spike during warm-up is not judged
    values += [*noisy(60, 20, 0.5, seed=2), 45.0, 44.0, *noisy(10, 20, 0.5, seed=3)]
    events = series_of(scenario, [(i * 5.0, v) for i, v in enumerate(values)])
    assert [k for _, k in events] == ["firing", "resolved"]
    assert events[0][0] == 81 * 5.0  # the first post-warm-up spike


def test_anomaly_raises_nothing_on_clean_noise() -> None:
    scenario = Scenario([rule(anomaly={**LEVEL, "method": "mad", "warmup": 30, "threshold": 6})])
    assert series_of(scenario, [(i * 5.0, v) for i, v in enumerate(noisy(2000, 20, 1.0, seed=7))]) == []


def test_hour_of_week_baseline_knows_the_daily_rhythm() -> None:
    """Water use is high by day and low at night: daytime highs are normal, the same at 3 a.m. is not."""
    scenario = Scenario(
        [
            rule(
                anomaly={
                    **LEVEL,
                    "method": "ewma",
                    "baseline": "hour_of_week",
                    "warmup": 3,
                    "alpha": 0.3,
                    "threshold": 6,
                    "min_spread": 1.0,
                }
            )
        ]
    )
    rng = random.Random(3)

    def usual(hour_local: int) -> float:
        return 40 + 30 * math.sin(math.pi * (hour_local - 6) / 12) if 6 <= hour_local <= 18 else 5.0

    steps = []
    for hour in range(4 * 168):  # four weeks of hourly readings
        local = (hour + 8) % 24
        steps.append((hour * 3600.0, usual(local) + rng.uniform(-0.5, 0.5)))
    assert series_of(scenario, steps) == []  # four weeks of normal rhythm: nothing
    night = 4 * 168 * 3600.0 + 19 * 3600.0  # 03:00 local next Monday
    assert kinds(scenario.reading(night, level_cm=60.0)) == ["firing"]


def test_flapping_keeps_the_alert_firing_instead_of_reopening() -> None:
    scenario = Scenario(
        [rule(threshold={**LEVEL, "op": ">=", "value": 50}, flapping={"window_s": 120, "max_changes": 4})]
    )
    steps = [(i * 5.0, 60.0 if i % 2 == 0 else 10.0) for i in range(12)]
    events = series_of(scenario, steps)
    assert [k for _, k in events] == ["firing", "resolved", "firing", "resolved", "firing", "flapping"]
    # Calm for a whole window: resolves once.
    calm = series_of(scenario, [(60 + i * 10.0, 10.0) for i in range(20)])
    assert [k for _, k in calm] == ["resolved"]


def test_stale_device_raises_a_deadman_alert_and_its_data_alerts_become_unknown() -> None:
    offline = rule(
        id="wl-silent", scope={"device": "wl-01"}, stale={"factor": 3, "min_s": 30}, category="device_offline"
    )
    flood = rule(id="flood", scope={"device": "wl-01"}, threshold={**LEVEL, "op": ">=", "value": 50})
    scenario = Scenario([offline, flood])
    assert kinds(scenario.reading(0, level_cm=70)) == ["firing"]
    assert scenario.tick(29) == []
    stale = scenario.tick(31)
    assert sorted((t.rule.id, t.kind) for t in stale) == [("flood", "unknown"), ("wl-silent", "firing")]
    assert scenario.tick(60) == []  # unknown, never resolved, however long the silence
    back = scenario.reading(70, level_cm=72)
    assert sorted((t.rule.id, t.kind) for t in back) == [("flood", "firing"), ("wl-silent", "resolved")]


def test_event_lifecycle() -> None:
    scenario = Scenario(
        [
            rule(
                scope={"type": "camera.events@1"},
                event={"kind": "camera.motion", "attrs": {"zone": "fire-lane"}},
                category="fire_lane_blocked",
            )
        ]
    )
    assert scenario.event(0, "start", zone="garden") == []
    assert kinds(scenario.event(1, "start", zone="fire-lane")) == ["firing"]
    assert kinds(scenario.event(2, "update", zone="fire-lane")) == []
    assert kinds(scenario.event(3, "end", zone="fire-lane")) == ["resolved"]
    assert kinds(scenario.event(4, "instant", zone="fire-lane")) == ["firing", "resolved"]


def test_gateway_offline_inhibits_its_devices() -> None:
    gateway = rule(id="gw-offline", gateway_offline={}, category="device_offline")
    silent = rule(
        id="silent", scope={"type": "water.level@1"}, stale={"min_s": 30}, category="device_offline"
    )
    flood = rule(id="flood", scope={"device": "wl-01"}, threshold={**LEVEL, "op": ">=", "value": 50})
    scenario = Scenario([gateway, silent, flood])
    scenario.reading(0, "wl-03", level_cm=1)  # gw-02 keeps reporting
    assert kinds(scenario.reading(0, level_cm=70)) == ["firing"]
    down = scenario.state(1, "gw-01", online=False)
    assert [(t.rule.id, t.kind, t.inhibited) for t in down] == [
        ("gw-offline", "firing", False),
        ("flood", "unknown", True),
    ]
    assert down[0].subject.gateway == "gw-01" and down[0].opens_case
    scenario.reading(35, "wl-03", level_cm=1)
    stale = scenario.tick(40)
    assert {t.subject.key for t in stale if t.rule.id == "silent"} == {"wl-04"}  # gw-01's devices are covered
    up = scenario.state(50, "gw-01", online=True)
    assert [(t.rule.id, t.kind) for t in up] == [("gw-offline", "resolved")]


def test_composite_of_two_rules_in_one_grid() -> None:
    smoke = rule(
        id="smoke",
        scope={"type": "fire.smoke@1"},
        threshold={"field": "smoke", "op": "==", "value": True},
        category="fire_smoke",
    )
    haze = rule(
        id="haze", scope={"type": "camera.events@1"}, event={"kind": "camera.haze"}, category="fire_smoke"
    )
    both = rule(
        id="smoke-and-haze",
        composite={"op": "all", "rules": ["smoke", "haze"], "window_s": 300},
        category="fire_smoke",
    )
    scenario = Scenario([smoke, haze, both])
    assert kinds(scenario.reading(0, "sm-0101", smoke=True, obscuration=3.0)) == ["firing"]
    out = scenario.event(60, "start", kind="camera.haze")
    assert [(t.rule.id, t.kind) for t in out] == [("haze", "firing"), ("smoke-and-haze", "firing")]
    assert out[1].subject.grid == "g-north" and out[1].subject.device is None
    # Smoke in another grid does not combine with this grid's haze.
    assert [t.rule.id for t in scenario.reading(61, "sm-0301", smoke=True, obscuration=3.0)] == ["smoke"]
    scenario.reading(70, "sm-0101", smoke=False, obscuration=0.1)
    out = scenario.event(80, "end", kind="camera.haze")
    assert [(t.rule.id, t.kind) for t in out] == [("haze", "resolved"), ("smoke-and-haze", "resolved")]


def test_snapshot_restore_keeps_a_pending_timer_and_windows() -> None:
    spec = {"threshold": {**LEVEL, "op": ">=", "value": 50}, "for_s": 20}
    first = Scenario([rule(**spec)])
    assert kinds(first.reading(0, level_cm=60)) == ["pending"]
    snapshot = first.engine.snapshot()
    restarted = Scenario([rule(**spec)])
    restarted.engine.restore(snapshot)
    for seconds in (5, 10, 15):  # the series goes on reporting to the restarted engine
        assert kinds(restarted.reading(seconds, level_cm=61)) == []
    assert kinds(restarted.tick(19)) == []
    assert kinds(restarted.tick(21)) == ["firing"]  # timed from 0, as before the restart


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=120))
def test_streaming_median_and_mad_equal_the_textbook_ones(values: list[float]) -> None:
    ordered = sorted(values)
    median = statistics.median(ordered)
    assert _median(ordered) == median
    assert _median_abs_deviation(ordered, median) == pytest.approx(
        statistics.median(abs(x - median) for x in ordered)
    )


@given(st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=400))
def test_streaming_mad_with_many_ties_equals_the_textbook_one(values: list[int]) -> None:
    ordered = [float(v) for v in sorted(values)]
    median = statistics.median(ordered)
    assert _median_abs_deviation(ordered, median) == statistics.median(abs(x - median) for x in ordered)


class _CountingList(list[float]):
    reads = 0

    def __getitem__(self, index: Any) -> Any:
        _CountingList.reads += 1
        return super().__getitem__(index)


def test_the_mad_of_a_long_window_reads_a_few_of_its_samples_not_half_of_them() -> None:
    """Each reading of a device with a rolling-MAD rule pays for it: at ten readings a second and a
    window of minutes, walking half the window per sample is what capped the engine's throughput."""
    rng = random.Random(4)
    ordered = _CountingList(sorted(rng.gauss(20, 1) for _ in range(10_001)))
    median = statistics.median(ordered)
    _CountingList.reads = 0
    mad = _median_abs_deviation(ordered, median)
    assert _CountingList.reads <= 200
    assert mad == pytest.approx(statistics.median(abs(x - median) for x in ordered))


def test_a_state_reported_as_two_instant_events_pends_fires_and_clears() -> None:
    scenario = Scenario(
        [
            rule(
                id="unavailable",
                event={"kind": "device.unavailable", "clear_kind": "device.available"},
                for_s=60,
                category="device_offline",
            )
        ]
    )
    assert kinds(
        scenario.event(0, "instant", device="wl-01", kind="device.unavailable", reason="timeout")
    ) == ["pending"]
    assert kinds(scenario.event(30, "instant", device="wl-01", kind="device.available")) == ["cancelled"]
    assert kinds(scenario.event(40, "instant", device="wl-01", kind="device.unavailable", reason="crc")) == [
        "pending"
    ]
    assert kinds(scenario.tick(101)) == ["firing"]
    assert kinds(scenario.event(110, "instant", device="wl-01", kind="device.available")) == ["resolved"]
