from pathlib import Path

import pytest

from alerts.rules import Rate, Rule, load_rules
from cases.categories import load_categories
from contract import ContractError
from tests.alerts.scenario import CONFIG, Scenario, kinds


def test_shipped_rules_include_the_flooding_rule() -> None:
    rules = {r.id: r for r in load_rules(CONFIG, load_categories(CONFIG))}
    flooding = rules["flooding-water-level"]
    assert flooding.category == "flooding"
    assert flooding.threshold is not None
    assert (flooding.threshold.field, flooding.threshold.op, flooding.threshold.value) == (
        "level_cm",
        ">=",
        50,
    )


def test_shipped_rules_fire_on_the_pilot_devices() -> None:
    scenario = Scenario(load_rules(CONFIG, load_categories(CONFIG)))
    fired = scenario.reading(0, "wl-01", level_cm=72)
    assert [(t.rule.category, t.kind, t.subject.grid) for t in fired] == [("flooding", "firing", "g-north")]
    assert [t.rule.category for t in scenario.reading(1, "sm-0101", smoke=True, obscuration=9.0)] == [
        "fire_smoke"
    ]
    assert kinds(scenario.reading(2, "wl-02", level_cm=72)) == ["firing"]  # other device, own alert


def test_unknown_device_or_wrong_gateway_is_ignored() -> None:
    scenario = Scenario(load_rules(CONFIG, load_categories(CONFIG)))
    from contract import Reading

    reading = Reading(device="wl-01", ts=1_780_000_000_000, values={"level_cm": 90})
    assert scenario.engine.on_reading("zhuganxiang", "gw-02", reading) == []  # wl-01 lives on gw-01
    assert scenario.engine.on_reading("elsewhere", "gw-01", reading) == []


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("{id: r, version: 1, severity: critical, category: flooding}", "exactly one condition"),
        (
            "{id: r, version: 1, severity: critical, category: flooding, stale: {}, event: {kind: a.b}}",
            "exactly one condition",
        ),
        ("{id: r, version: 1, severity: loud, category: flooding, stale: {}}", "rules.0.severity"),
        (
            "{id: r, version: 1, severity: critical, category: flooding,"
            " threshold: {field: level_cm, op: '>=', value: 50, clear: 60}}",
            "clear level 60.0 must lie on the safe side",
        ),
        (
            "{id: r, version: 1, severity: critical, category: flooding,"
            " threshold: {field: level_cm, op: '>=', value: 50, n_of_m: {n: 6, m: 5}}}",
            "n (6) cannot exceed m (5)",
        ),
        ("{id: r, version: 1, severity: critical, category: floods, stale: {}}", "unknown category 'floods'"),
        (
            "{id: r, version: 1, severity: critical, category: flooding, composite: {op: all, rules: [r, x]}}",
            "'r' is not a simple rule",
        ),
        (
            "{id: r, version: 1, severity: critical, category: flooding, anomaly: {field: x, methd: mad}}",
            "rules.0.anomaly.methd: Extra inputs are not permitted",
        ),
    ],
)
def test_rule_file_errors_name_file_and_field(tmp_path: Path, rule: str, reason: str) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "categories.yaml").write_text(
        "categories: [{code: flooding, name_zh: 积水, name_en: F, sla_hours: 4}]\n"
    )
    (tmp_path / "rules" / "x.yaml").write_text(f"rules:\n  - {rule}\n")
    with pytest.raises(ContractError, match=r"x\.yaml") as info:
        load_rules(tmp_path, load_categories(tmp_path))
    assert reason in str(info.value)


def test_rule_condition_accessors() -> None:
    rule = Rule.model_validate(
        {
            "id": "r",
            "version": 1,
            "severity": "info",
            "category": "flooding",
            "rate": {"field": "level_cm", "window_s": 60, "op": ">=", "per_minute": 5},
        }
    )
    assert (rule.condition, rule.field) == ("rate", "level_cm")


@pytest.mark.parametrize(
    ("op", "per_minute", "clear_ratio", "clear_level"),
    [
        (">=", 10.0, 0.5, 5.0),  # rising fast: resolves once rising at under 5 cm/min
        ("<=", -10.0, 0.5, -5.0),  # falling fast: resolves once falling at under 5 cm/min
        (">=", -2.0, 0.5, -3.0),  # a limit below zero still moves the band to the safe side
        (">=", 10.0, 1.0, 10.0),  # no band: resolves as soon as the limit is not met
    ],
)
def test_a_rate_rule_resolves_on_the_safe_side_of_its_limit(
    op: str, per_minute: float, clear_ratio: float, clear_level: float
) -> None:
    rate = Rate.model_validate(
        {"field": "level_cm", "window_s": 60, "op": op, "per_minute": per_minute, "clear_ratio": clear_ratio}
    )
    assert rate.clear_level == pytest.approx(clear_level)
    inside = (per_minute + clear_level) / 2
    assert not rate.cleared(inside) or clear_ratio == 1.0  # inside the band: neither breach nor clear
    assert not rate.breached(inside) or clear_ratio == 1.0
    beyond = clear_level - 1 if op == ">=" else clear_level + 1
    assert rate.cleared(beyond) and not rate.breached(beyond)


@pytest.mark.parametrize("clear_ratio", [0, -0.5, 1.5])
def test_a_rate_rule_refuses_a_clear_ratio_outside_zero_to_one(clear_ratio: float) -> None:
    with pytest.raises(ValueError, match="clear_ratio"):
        Rate.model_validate(
            {"field": "level_cm", "window_s": 60, "op": ">=", "per_minute": 10, "clear_ratio": clear_ratio}
        )
