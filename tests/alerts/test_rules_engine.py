import uuid
from pathlib import Path

import pytest

from alerts.engine import AlertEngine
from alerts.rules import Rule, load_categories, load_rules
from contract import ContractError, Event, Reading
from contract.catalog import load_catalog

CONFIG = Path(__file__).resolve().parents[2] / "config"
TS = 1764183600000


@pytest.fixture(scope="module")
def engine_parts() -> tuple[list[Rule], object]:
    categories = load_categories(CONFIG)
    return load_rules(CONFIG, categories), load_catalog(CONFIG)


def make_engine(engine_parts: tuple[list[Rule], object]) -> AlertEngine:
    rules, catalog = engine_parts
    return AlertEngine(rules, catalog)  # type: ignore[arg-type]


def level(value: float, ts: int = TS, device: str = "wl-01") -> Reading:
    return Reading(device=device, ts=ts, values={"level_cm": value})


def test_shipped_rules_include_the_flooding_rule(engine_parts: tuple[list[Rule], object]) -> None:
    rules = {r.id: r for r in engine_parts[0]}
    flooding = rules["flooding-water-level"]
    assert flooding.category == "flooding"
    assert flooding.threshold is not None and flooding.threshold.op == ">=" and flooding.threshold.value == 50


def test_threshold_fires_once_and_resolves_with_hysteresis(engine_parts: tuple[list[Rule], object]) -> None:
    engine = make_engine(engine_parts)
    assert engine.on_reading("zhuganxiang", "gw-01", level(49.9)) == []
    fired = engine.on_reading("zhuganxiang", "gw-01", level(50, TS + 1))
    assert [(t.status, t.rule.category, t.observed) for t in fired] == [
        ("firing", "flooding", {"level_cm": 50})
    ]
    assert engine.on_reading("zhuganxiang", "gw-01", level(72, TS + 2)) == []  # still firing: no new alert
    assert engine.on_reading("zhuganxiang", "gw-01", level(45, TS + 3)) == []  # below 50 but above clear 40
    resolved = engine.on_reading("zhuganxiang", "gw-01", level(39, TS + 4))
    assert [t.status for t in resolved] == ["resolved"]


def test_unknown_device_or_wrong_gateway_is_ignored(engine_parts: tuple[list[Rule], object]) -> None:
    engine = make_engine(engine_parts)
    assert engine.on_reading("zhuganxiang", "gw-02", level(90)) == []  # wl-01 lives on gw-01
    assert engine.on_reading("zhuganxiang", "gw-01", level(90, device="wl-99")) == []


def test_firing_state_survives_a_restart(engine_parts: tuple[list[Rule], object]) -> None:
    first = make_engine(engine_parts)
    fired = first.on_reading("zhuganxiang", "gw-01", level(80))
    rules, catalog = engine_parts
    restarted = AlertEngine(rules, catalog, firing=first.firing)  # type: ignore[arg-type]
    assert restarted.on_reading("zhuganxiang", "gw-01", level(80, TS + 1)) == []
    assert fired[0].fingerprint in restarted.firing


def test_camera_event_lifecycle(engine_parts: tuple[list[Rule], object]) -> None:
    engine = make_engine(engine_parts)
    event_id = uuid.uuid4()

    def event(phase: str, zone: str = "fire-lane") -> Event:
        return Event(
            device="cam-01",
            ts=TS,
            id=event_id,
            kind="camera.motion",
            phase=phase,  # type: ignore[arg-type]
            attrs={"zone": zone, "score": 0.8},
        )

    assert engine.on_event("zhuganxiang", "gw-01", event("start", zone="garden")) == []
    started = engine.on_event("zhuganxiang", "gw-01", event("start"))
    assert [(t.status, t.rule.category) for t in started] == [("firing", "fire_lane_blocked")]
    assert started[0].observed["event_id"] == str(event_id)
    assert engine.on_event("zhuganxiang", "gw-01", event("update")) == []
    assert [t.status for t in engine.on_event("zhuganxiang", "gw-01", event("end"))] == ["resolved"]


def test_boolean_rule(engine_parts: tuple[list[Rule], object]) -> None:
    engine = make_engine(engine_parts)
    reading = Reading(device="sm-0101", ts=TS, values={"smoke": True, "obscuration": 9.0})
    assert [t.rule.category for t in engine.on_reading("zhuganxiang", "gw-01", reading)] == ["fire_smoke"]


def test_rule_file_errors_name_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "categories.yaml").write_text(
        "categories: [{code: flooding, name_zh: 积水, name_en: F, sla_hours: 4}]\n"
    )
    rule = (
        "rules:\n  - {id: r, version: 1, scope: {type: water.level@1}, severity: critical, category: %s,\n"
        "     threshold: {field: level_cm, op: '>=', value: 50, clear: %s}}\n"
    )
    path = tmp_path / "rules" / "x.yaml"
    categories = load_categories(tmp_path)
    path.write_text(rule % ("flooding", 60))
    with pytest.raises(
        ContractError, match=r"x.yaml: rules.0.threshold: clear level 60.0 must lie on the safe side"
    ):
        load_rules(tmp_path, categories)
    path.write_text(rule % ("floods", 40))
    with pytest.raises(ContractError, match=r"x.yaml: rules.0.category: unknown category 'floods'"):
        load_rules(tmp_path, categories)
