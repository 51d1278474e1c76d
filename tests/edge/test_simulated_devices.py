"""The simulated community: valid values, a daily cycle, regular anomalies, reproducibility."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from contract.catalog import Catalog, load_catalog
from contract.messages import Event, Reading
from edge.simulated_devices import GatewaySimulator, simulators_for

CONFIG = Path(__file__).resolve().parents[2] / "config"
COMMUNITY = "zhuganxiang"
CST = timezone(timedelta(hours=8))
# Local midnight in the pilot community, so hours of the day are easy to read in the tests.
START_MS = int(datetime(2025, 6, 1, tzinfo=CST).timestamp() * 1000)

Run = dict[str, tuple[list[Reading], list[Event]]]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


def simulate(
    catalog: Catalog, *, seconds: int, step_s: int = 1, seed: int = 7, period_s: float = 45.0
) -> Run:
    sims = simulators_for(catalog, COMMUNITY, seed=seed, anomaly_period_s=period_s)
    out: Run = {gw: ([], []) for gw in sims}
    for t in range(0, seconds, step_s):
        for gw, sim in sims.items():
            readings, events = sim.step(START_MS + t * 1000)
            out[gw][0].extend(readings)
            out[gw][1].extend(events)
    return out


@pytest.fixture(scope="module")
def hour(catalog: Catalog) -> Run:
    """One simulated hour at one-second ticks, as the service runs it."""
    return simulate(catalog, seconds=3600)


def _alarm_times(readings: list[Reading], events: list[Event]) -> list[int]:
    times = [
        r.ts
        for r in readings
        if float(r.values.get("level_cm", 0)) >= 50
        or float(r.values.get("lel_pct", 0)) >= 20
        or r.values.get("smoke") is True
    ]
    times += [e.ts for e in events if e.kind == "camera.tamper" or e.attrs.get("zone") == "fire-lane"]
    return sorted(times)


def test_values_match_profiles_for_hours(catalog: Catalog) -> None:
    run = simulate(catalog, seconds=4 * 3600, step_s=2)
    counts: dict[str, int] = defaultdict(int)
    for readings, _ in run.values():
        for reading in readings:
            info = catalog.device(COMMUNITY, _gateway_of(catalog, reading.device), reading.device)
            assert info is not None
            profile = info.profile
            # coerce_values raises on an unknown field, a wrong type or a value outside the range.
            assert profile.coerce_values(dict(reading.values)) == reading.values
            for name, value in reading.values.items():
                expected = {"float": float, "int": int, "bool": bool, "string": str}[
                    profile.fields[name].type
                ]
                assert type(value) is expected, (reading.device, name, value)
            assert set(reading.values) == set(profile.fields)
            counts[profile.id] += 1
    # Every sensor type with fields reported, at roughly its expected interval.
    assert set(counts) == {"env.th@1", "water.level@1", "fire.smoke@1", "gas.combustible@1", "access.door@1"}
    assert counts["env.th@1"] >= 9 * 4 * 360 * 0.9  # 9 probes, every 10 s, 4 hours


def _gateway_of(catalog: Catalog, device: str) -> str:
    info = catalog.device_in(COMMUNITY, device)
    assert info is not None
    return info.gateway.id


def test_daily_cycle_warm_afternoon_cool_predawn(catalog: Catalog) -> None:
    run = simulate(catalog, seconds=24 * 3600, step_s=60)
    afternoon: list[float] = []
    predawn: list[float] = []
    humid_afternoon: list[float] = []
    humid_predawn: list[float] = []
    for readings, _ in run.values():
        for r in readings:
            if "temperature" not in r.values:
                continue
            hour = datetime.fromtimestamp(r.ts / 1000, CST).hour
            temperature, humidity = float(r.values["temperature"]), float(r.values["humidity"])
            if 13 <= hour < 17:
                afternoon.append(temperature)
                humid_afternoon.append(humidity)
            elif 2 <= hour < 6:
                predawn.append(temperature)
                humid_predawn.append(humidity)
    assert statistics.mean(afternoon) > statistics.mean(predawn) + 2
    # Humidity runs against temperature.
    assert statistics.mean(humid_afternoon) < statistics.mean(humid_predawn)


def test_an_anomaly_at_least_every_60_seconds(hour: Run) -> None:
    for gateway, (readings, events) in hour.items():
        times = _alarm_times(readings, events)
        assert times, gateway
        edges = [START_MS, *times, START_MS + 3600 * 1000]
        worst = max(b - a for a, b in itertools.pairwise(edges))
        assert worst <= 60_000, (gateway, worst)


def test_period_is_configurable(catalog: Catalog) -> None:
    run = simulate(catalog, seconds=600, period_s=20)
    for gateway, (readings, events) in run.items():
        times = _alarm_times(readings, events)
        edges = [START_MS, *times, START_MS + 600 * 1000]
        assert max(b - a for a, b in itertools.pairwise(edges)) <= 30_000, gateway


def test_flood_rises_past_50_cm_then_recedes(hour: Run) -> None:
    levels: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for readings, _ in hour.values():
        for r in readings:
            if "level_cm" in r.values:
                levels[r.device].append((r.ts, float(r.values["level_cm"])))
    flooded = {d: series for d, series in levels.items() if max(v for _, v in series) >= 50}
    assert flooded
    for series in flooded.values():
        peak_at = next(i for i, (_, v) in enumerate(series) if v >= 50)
        # The water goes back down below the alert's clear level (40 cm) afterwards.
        assert any(v < 10 for _, v in series[peak_at:])
        # While the water rises the device reports every 1-2 s (not every 5 s).
        rising = [ts for ts, v in series if v > 10]
        gaps = [b - a for a, b in itertools.pairwise(rising) if b - a < 10_000]
        assert gaps
        assert max(gaps) <= 2_000


def test_camera_events_keep_their_id_from_start_to_end(hour: Run) -> None:
    by_id: dict[str, list[Event]] = defaultdict(list)
    for _, events in hour.values():
        for e in events:
            by_id[str(e.id)].append(e)
    kinds = {e.kind for events in by_id.values() for e in events}
    assert kinds == {"camera.motion", "camera.tamper"}
    for event_id, events in by_id.items():
        phases = [e.phase for e in events]
        assert len({(e.device, e.kind) for e in events}) == 1, event_id
        if phases == ["instant"]:
            continue
        assert phases[0] == "start", phases
        assert phases[-1] == "end", phases
        assert set(phases[1:-1]) <= {"update"}, phases
        if events[0].kind == "camera.motion":
            assert all(e.attrs["zone"] == "fire-lane" and 0 < float(e.attrs["score"]) <= 1 for e in events)


def _dump(run: Run) -> dict[str, tuple[list[dict[str, object]], list[dict[str, object]]]]:
    return {gw: ([r.model_dump() for r in rs], [e.model_dump() for e in es]) for gw, (rs, es) in run.items()}


def test_same_seed_same_output(catalog: Catalog) -> None:
    a = simulate(catalog, seconds=900, seed=3)
    b = simulate(catalog, seconds=900, seed=3)
    c = simulate(catalog, seconds=900, seed=4)
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)


def test_rotation_covers_the_kinds_a_gateway_supports(catalog: Catalog) -> None:
    sims = simulators_for(catalog, COMMUNITY, seed=1)
    assert {k.value for k in sims["gw-01"].rotation} == {
        "flood",
        "gas_leak",
        "smoke",
        "fire_lane",
        "camera_tamper",
    }
    # gw-02 has no camera: it rotates through the sensor anomalies only.
    assert {k.value for k in sims["gw-02"].rotation} == {"flood", "gas_leak", "smoke"}


def test_unknown_community_is_a_clear_error(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="unknown community"):
        simulators_for(catalog, "nowhere")


def test_bad_period_rejected(catalog: Catalog) -> None:
    gateway = catalog.communities[COMMUNITY].gateways[0]
    with pytest.raises(ValueError, match="positive"):
        GatewaySimulator(COMMUNITY, gateway, catalog.profiles, anomaly_period_s=0)


def test_timestamps_are_the_step_time(catalog: Catalog) -> None:
    sim = simulators_for(catalog, COMMUNITY)["gw-01"]
    now = START_MS + 123
    readings, _ = sim.step(now)
    assert readings
    assert {r.ts for r in readings} == {now}
    assert datetime.fromtimestamp(now / 1000, UTC).year == 2025


def test_a_type_the_simulator_does_not_know_rests_in_its_normal_band(catalog: Catalog) -> None:
    from contract.catalog import Device, Gateway
    from contract.profiles import SensorTypeProfile
    from edge.simulated_devices import normal_band

    new_type = SensorTypeProfile.model_validate(
        {
            "id": "air.co2@1",
            "name": "CO2",
            "expected_interval_s": 10,
            "fields": {
                "co2_ppm": {"type": "float", "min": 0, "max": 10000, "normal": [400, 800]},
                "temperature": {"type": "float", "min": -40, "max": 85},  # no band: the middle fifth
                "people": {"type": "int", "min": 0, "max": 50, "normal": [2, 4]},
            },
        }
    )
    profiles = {**catalog.profiles, "air.co2@1": new_type, "power.meter@1": catalog.profiles["power.meter@1"]}
    devices = [Device(id=f"co2-{i}", type="air.co2@1", grid="g") for i in range(5)]
    devices += [Device(id="em-1", type="power.meter@1", grid="g")]
    sim = GatewaySimulator("c", Gateway(id="gw", devices=devices), profiles, seed=3)
    seen: dict[tuple[str, str], list[float]] = defaultdict(list)
    for t in range(0, 2 * 3600, 5):
        for reading in sim.step(START_MS + t * 1000)[0]:
            for name, value in reading.values.items():
                seen[(reading.device, name)].append(float(value))
    assert normal_band(new_type.fields["temperature"]) == pytest.approx((10.0, 35.0))
    for (device, name), values in seen.items():
        spec = profiles["power.meter@1" if device == "em-1" else "air.co2@1"].fields[name]
        low, high = normal_band(spec)
        assert low <= min(values) and max(values) <= high, (device, name, min(values), max(values))
        if spec.type == "float":
            assert len(set(values)) > 1, (device, name)  # a little noise, not a constant
    assert len(seen[("co2-0", "co2_ppm")]) > 400
    # Devices of one type do not all rest on the same value.
    assert len({round(statistics.mean(seen[(f"co2-{i}", "co2_ppm")])) for i in range(5)}) > 1


def test_the_demo_rules_stay_quiet_on_normal_values(catalog: Catalog) -> None:
    import yaml

    from edge.simulated_devices import normal_band

    quiet = {
        ">=": lambda lo, hi, v: hi < v,
        ">": lambda lo, hi, v: hi <= v,
        "<=": lambda lo, hi, v: lo > v,
        "<": lambda lo, hi, v: lo >= v,
    }
    checked = 0
    for path in sorted((CONFIG / "rules").glob("*.yaml")):
        for rule in yaml.safe_load(path.read_text())["rules"]:
            threshold, scope = rule.get("threshold"), rule.get("scope", {})
            if not threshold or threshold["op"] not in quiet or "type" not in scope:
                continue
            spec = catalog.profiles[scope["type"]].fields[threshold["field"]]
            low, high = normal_band(spec)
            assert quiet[threshold["op"]](low, high, threshold["value"]), (rule["id"], low, high)
            checked += 1
    assert checked >= 3
