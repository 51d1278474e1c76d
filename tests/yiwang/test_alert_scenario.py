"""The alerts benchmark's scenario, fed to the engine in-process: the background raises nothing, every
injection raises exactly its alert, a wrong rule would raise false alerts, and the accounting counts
misses and false alerts."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.engine import AlertEngine
from alerts.rules import Rule, load_rules
from cases.categories import load_categories
from contract import Event, Reading
from contract.catalog import load_catalog
from yiwang.bench.alert_scenario import (
    COMMUNITY,
    KINDS,
    RULE_OF,
    Firing,
    Injection,
    Kind,
    Plan,
    Scenario,
    account,
    build,
    percentile,
    rules,
    write_config,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = 1_780_000_000_000
# Small enough to replay in seconds, with the full benchmark's rules, shapes and timing.
SMALL = Plan(
    gateways=2,
    water_per_gateway=9,
    gas_per_gateway=6,
    cameras_per_gateway=1,
    hz=2.0,
    per_kind=4,
    warmup_s=40.0,
    spread_s=40.0,
)


def replay(scenario: Scenario, rule_specs: list[dict[str, Any]] | None = None) -> list[Firing]:
    """Feed every tick to an engine on a manual clock (its timers once a second); the firings."""
    plan = scenario.plan
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp)
        write_config(CONFIG, config, scenario)
        if rule_specs is not None:
            (config / "rules" / "bench.yaml").write_text(yaml.safe_dump({"rules": rule_specs}))
        catalog = load_catalog(config)
        engine_rules: list[Rule] = load_rules(config, load_categories(config))
    now = [T0]
    engine = AlertEngine(engine_rules, catalog, clock=lambda: now[0])
    firings: list[Firing] = []
    next_timer = T0
    for tick in range(scenario.ticks):
        now[0] = ts = T0 + round(tick * 1000 / plan.hz)
        out = []
        if ts >= next_timer:
            out += engine.tick()
            next_timer += 1000
        for gateway, readings in scenario.readings(tick).items():
            for device, name, value in readings:
                out += engine.on_reading(
                    COMMUNITY, gateway, Reading(device=device, ts=ts, values={name: value})
                )
        for gateway, events in scenario.events(tick).items():
            for camera, zone in events:
                event = Event(
                    device=camera,
                    ts=ts,
                    id=uuid.uuid4(),
                    kind="camera.motion",
                    phase="instant",
                    attrs={"zone": zone},
                )
                out += engine.on_event(COMMUNITY, gateway, event)
        firings += [Firing(t.rule.id, t.subject.key, (now[0] - T0) / 1000) for t in out if t.opens_case]
    return firings


def _without_injections(plan: Plan) -> Scenario:
    scenario = build(plan)
    for series in scenario._series.values():
        series.injection = None
    scenario._events_at.clear()
    scenario.injections.clear()
    return scenario


def test_the_background_alone_raises_no_alert() -> None:
    scenario = _without_injections(SMALL)
    assert scenario.ticks >= (SMALL.warmup_s + SMALL.spread_s) * SMALL.hz
    assert replay(scenario) == []


def test_every_injection_raises_exactly_its_own_alert() -> None:
    scenario = build(SMALL)
    assert {i.kind for i in scenario.injections} == set(KINDS)
    tally = account(scenario.injections, replay(scenario))
    for kind in KINDS:
        assert (tally[kind].injected, tally[kind].detected, tally[kind].false_alerts) == (4, 4, 0), kind


def test_each_injection_fires_no_earlier_than_it_is_due() -> None:
    """The due times are the rules' own definitions: an alert may lag them, never precede them."""
    scenario = build(SMALL)
    tally = account(scenario.injections, replay(scenario))
    for kind in KINDS:
        assert all(0 <= ms < 1500 for ms in tally[kind].latencies_ms), (kind, tally[kind].latencies_ms)


@pytest.mark.parametrize(
    ("kind", "mistake"),
    [
        ("threshold", lambda r: r["threshold"].pop("clear")),  # no hysteresis: the retouch fires again
        ("threshold", lambda r: r["threshold"].update(value=47.0)),  # hovering basements fire
        ("n_of_m", lambda r: r["threshold"].pop("n_of_m")),  # a single outlier fires
        ("anomaly", lambda r: r.update(for_s=0)),  # a single outlier fires
        ("rate", lambda r: r["rate"].update(window_s=10)),  # a short window: a hovering rise fires
        ("event", lambda r: r["event"].pop("attrs")),  # corridor motion fires
    ],
)
def test_a_wrong_rule_raises_false_alerts(kind: Kind, mistake: Any) -> None:
    """The background is hard enough that each kind's usual mistake shows."""
    specs = rules(SMALL)
    mistake(next(r for r in specs if r["id"] == RULE_OF[kind]))
    scenario = build(SMALL)
    tally = account(scenario.injections, replay(scenario, specs))
    assert tally[kind].false_alerts > 0


def test_the_accounting_counts_a_miss_a_false_alert_and_a_second_firing() -> None:
    injections = [
        Injection("threshold", "wl-0001", 100.0, 160.0, 120.0),
        Injection("threshold", "wl-0002", 100.0, 160.0, 130.0),
        Injection("deadman", "wl-0003", 100.0, 140.0, 99.9, 30.0),
    ]
    firings = [
        Firing(RULE_OF["threshold"], "wl-0001", 120.25),  # detected, 250 ms
        Firing(RULE_OF["threshold"], "wl-0001", 150.0),  # a second firing of the same incident: false
        Firing(RULE_OF["threshold"], "wl-0009", 121.0),  # no injection on that device: false
        Firing(RULE_OF["threshold"], "wl-0002", 99.0),  # before its incident began: false; so a miss
        Firing(RULE_OF["deadman"], "wl-0003", 130.4),  # 99.9 + 30 s due: 500 ms
        Firing(RULE_OF["rate"], "wl-0003", 131.0),  # the wrong rule on an injected device: false
    ]
    tally = account(injections, firings)
    threshold, deadman, rate = tally["threshold"], tally["deadman"], tally["rate"]
    assert (threshold.injected, threshold.detected, threshold.missed, threshold.false_alerts) == (2, 1, 1, 3)
    assert threshold.latencies_ms[0] == pytest.approx(250.0)
    assert math.isinf(threshold.latencies_ms[1])
    assert (deadman.detected, deadman.missed, deadman.false_alerts) == (1, 0, 0)
    assert deadman.latencies_ms == [pytest.approx(500.0)]
    assert (rate.injected, rate.false_alerts) == (0, 1)


def test_a_miss_is_a_latency_beyond_every_limit() -> None:
    assert percentile([10.0] * 99 + [math.inf], 0.99) == 10.0
    assert percentile([10.0] * 98 + [math.inf] * 2, 0.99) is None
    assert percentile([], 0.99) is None


def test_a_plan_too_small_for_its_injections_is_refused() -> None:
    with pytest.raises(ValueError, match="injections per kind need"):
        dataclasses.replace(SMALL, per_kind=20)
