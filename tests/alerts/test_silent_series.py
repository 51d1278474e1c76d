"""No `for` alert on a silent series: a pending alert of a per-sample rule fires on its timer only
while its series keeps reporting (issue 27: the bench's two false MAD alerts, ten seconds after the
sensors' last sample had been an outlier and they fell silent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.engine import AlertEngine
from alerts.rules import load_rules
from cases.categories import load_categories
from contract import Reading
from contract.catalog import load_catalog
from tests.alerts.scenario import CONFIG, T0, Scenario, kinds, rule
from yiwang.bench.alert_scenario import COMMUNITY, RULE_OF, Plan, build, write_config

LEVEL = {"field": "level_cm"}
FOR_S = 10.0


def fast_mad() -> Scenario:
    """wl-01 (profile: every 5 s) reporting ten times a second, watched by a MAD rule with a `for`."""
    anomaly = {**LEVEL, "method": "mad", "window": 100, "warmup": 50, "threshold": 8, "min_spread": 0.5}
    return Scenario([rule(scope={"device": "wl-01"}, anomaly=anomaly, for_s=FOR_S)])


def warm(scenario: Scenario, until_s: float) -> float:
    """A quiet series at 10 Hz up to ``until_s``; returns the time of its last sample."""
    steps = round(until_s * 10)
    for i in range(steps + 1):
        assert kinds(scenario.reading(i / 10, level_cm=20.0 + (i % 5) * 0.1)) == []
    return steps / 10


def test_an_outlier_that_is_the_series_last_sample_never_fires_on_the_timer() -> None:
    scenario = fast_mad()
    last = warm(scenario, 20)
    assert kinds(scenario.reading(last + 0.1, level_cm=60.0)) == ["pending"]
    # Then nothing more from the sensor: the timer alone must not fire, not at `for`, not later.
    for seconds in (last + 0.1 + FOR_S + 0.05, last + 15, last + 25):
        assert kinds(scenario.tick(seconds)) == []
    # Silent past the data-stale limit (30 s at least): the pending alert is cancelled, never fired.
    assert kinds(scenario.tick(last + 0.1 + 31)) == ["cancelled"]


def test_a_fast_series_that_keeps_breaching_fires_on_the_timer_between_its_samples() -> None:
    scenario = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=FOR_S)])
    assert kinds(scenario.reading(0, level_cm=60.0)) == ["pending"]
    for i in range(1, 100):  # ten a second up to 9.9 s
        assert kinds(scenario.reading(i / 10, level_cm=60.0)) == []
    # The last sample 0.15 s before the timer: live (a fast series is silent after 1 s at least).
    assert kinds(scenario.tick(FOR_S + 0.05)) == ["firing"]


@pytest.mark.parametrize(("value", "expected"), [(60.0, ["firing"]), (20.0, ["cancelled"])])
def test_a_silent_series_that_reports_again_is_decided_by_that_sample(
    value: float, expected: list[str]
) -> None:
    scenario = fast_mad()
    last = warm(scenario, 20)
    assert kinds(scenario.reading(last + 0.1, level_cm=60.0)) == ["pending"]
    assert kinds(scenario.tick(last + 12)) == []
    # Back after 12 s (the `for` has passed): a breach fires at once, a normal value cancels.
    assert kinds(scenario.reading(last + 12.5, level_cm=value)) == expected


@pytest.mark.parametrize(("last_sample_s", "expected"), [(5, []), (10, ["firing"])])
def test_a_slow_series_is_silent_after_three_of_its_intervals(
    last_sample_s: float, expected: list[str]
) -> None:
    """wl-01 reporting every 5 s: at the timer (21 s) a series last heard 16 s ago is silent, one heard
    11 s ago is not."""
    scenario = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=20)])
    assert kinds(scenario.reading(0, level_cm=60)) == ["pending"]
    for seconds in range(5, int(last_sample_s) + 1, 5):
        assert kinds(scenario.reading(seconds, level_cm=60)) == []
    assert kinds(scenario.tick(21)) == expected


@pytest.mark.parametrize(("last_sample_s", "expected"), [(0, []), (10, ["firing"])])
def test_a_restored_pending_alert_keeps_when_its_series_was_last_heard(
    last_sample_s: float, expected: list[str]
) -> None:
    """A restart changes nothing: the checkpoint carries the series' last sample and cadence."""
    spec = {"threshold": {**LEVEL, "op": ">=", "value": 50}, "for_s": 20}
    first = Scenario([rule(**spec)])
    assert kinds(first.reading(0, level_cm=60)) == ["pending"]
    for seconds in range(5, int(last_sample_s) + 1, 5):
        assert kinds(first.reading(seconds, level_cm=60)) == []
    restarted = Scenario([rule(**spec)])
    restarted.engine.restore(first.engine.snapshot())
    assert kinds(restarted.tick(21)) == expected  # heard 21 s ago (silent) or 11 s ago (every 5 s)
    if not expected:
        assert kinds(restarted.reading(22, level_cm=60)) == ["firing"]  # timed from 0, as before


def test_an_event_rule_with_a_for_fires_on_the_timer_alone() -> None:
    """An event's state lasts until its clear event: no samples are expected in between."""
    scenario = Scenario(
        [
            rule(
                event={"kind": "device.unavailable", "clear_kind": "device.available"},
                for_s=60,
                category="device_offline",
            )
        ]
    )
    assert kinds(scenario.event(0, "instant", device="wl-01", kind="device.unavailable")) == ["pending"]
    assert kinds(scenario.tick(61)) == ["firing"]


def test_the_bench_background_stopping_after_a_gas_outlier_raises_no_mad_alert(tmp_path: Path) -> None:
    """The bench's two false alerts, replayed: its gas background at 10 Hz throws the odd outlier
    that the MAD rule's `for` absorbs; the stream stops right after one, and the timers run on."""
    plan = Plan(gateways=1, water_per_gateway=12, gas_per_gateway=8, cameras_per_gateway=2, per_kind=4)
    scenario = build(plan)
    write_config(CONFIG, tmp_path, scenario)
    now = [T0]
    engine = AlertEngine(
        load_rules(tmp_path, load_categories(tmp_path)), load_catalog(tmp_path), clock=lambda: now[0]
    )
    anomaly = RULE_OF["anomaly"]
    pending: list[str] = []
    for tick in range(scenario.ticks):
        now[0] = T0 + tick * 100
        engine.tick()
        out = [
            t
            for gateway, readings in scenario.readings(tick).items()
            for device, name, value in readings
            for t in engine.on_reading(
                COMMUNITY, gateway, Reading(device=device, ts=now[0], values={name: value})
            )
        ]
        pending = [t.fingerprint for t in out if t.rule.id == anomaly and t.kind == "pending"]
        if pending and tick / plan.hz > plan.warmup_s:
            break  # the stream stops right after an outlier
    assert pending, "the background threw no outlier to absorb"
    stopped = now[0]
    fired = []
    while now[0] < stopped + 40_000:  # the timers, ten times a second, for 40 s of silence
        now[0] += 100
        fired += [(t.kind, (now[0] - stopped) / 1000) for t in engine.tick() if t.fingerprint in pending]
    assert [kind for kind, _ in fired] == ["cancelled"] * len(pending), fired  # by the data-stale check


def test_before_its_second_sample_a_series_is_judged_by_its_profile_interval() -> None:
    """One sample, then nothing: wl-01's profile says every 5 s, so it is silent after 15 s."""
    scenario = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=10)])
    assert kinds(scenario.reading(0, level_cm=60)) == ["pending"]
    assert kinds(scenario.tick(11)) == ["firing"]  # heard 11 s ago: within 3 × 5 s
    late = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=20)])
    assert kinds(late.reading(0, level_cm=60)) == ["pending"]
    assert kinds(late.tick(21)) == []  # heard 21 s ago: silent


def test_a_series_reporting_slower_than_its_profile_is_judged_by_its_own_cadence() -> None:
    """wl-01 (profile: every 5 s) reporting every 10 s is live for 30 s after a sample."""
    scenario = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=30)])
    assert kinds(scenario.reading(0, level_cm=3)) == []
    assert kinds(scenario.reading(10, level_cm=55)) == ["pending"]
    assert kinds(scenario.reading(20, level_cm=58)) == []
    assert kinds(scenario.tick(41)) == ["firing"]  # heard 21 s ago, every 10 s
    stopped = Scenario([rule(threshold={**LEVEL, "op": ">=", "value": 50}, for_s=30)])
    stopped.reading(0, level_cm=3)
    stopped.reading(10, level_cm=55)
    stopped.reading(20, level_cm=58)
    # Heard 31 s ago: three of its intervals passed, and the data-stale limit (30 s): cancelled.
    assert kinds(stopped.tick(51)) == ["cancelled"]
