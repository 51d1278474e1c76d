"""A rule set swapped while running (#28): a rule whose id and version did not change keeps its
pending `for` timer and its rolling baseline; a new version starts its window afresh; a removed rule's
alert resolves."""

from __future__ import annotations

import random

import pytest

from alerts.rules import Rule, plan_swap, rule_document, rules_of_files, with_rule
from contract.errors import ContractError
from tests.alerts.scenario import Scenario, kinds, rule

ANOMALY = {
    "field": "level_cm",
    "method": "mad",
    "window": 60,
    "warmup": 30,
    "threshold": 6,
    "min_spread": 0.2,
}
PENDING = rule(
    id="deep-water",
    scope={"device": "wl-02"},
    threshold={"field": "level_cm", "op": ">=", "value": 50},
    for_s=30,
)
BASELINE = rule(id="odd-level", scope={"device": "wl-01"}, anomaly=ANOMALY)
TWIN = rule(id="odd-level-twin", scope={"device": "wl-01"}, anomaly=ANOMALY)
GONE = rule(id="wet-03", scope={"device": "wl-03"}, threshold={"field": "level_cm", "op": ">=", "value": 50})
ADDED = rule(
    id="very-deep", scope={"device": "wl-02"}, threshold={"field": "level_cm", "op": ">=", "value": 90}
)


def _warm(scenario: Scenario) -> None:
    """35 quiet readings of wl-01: past the anomaly rules' warm-up of 30 samples."""
    rng = random.Random(7)
    for i in range(35):
        assert scenario.reading(i * 5.0, "wl-01", level_cm=20 + rng.uniform(-0.5, 0.5)) == []


def test_unchanged_rules_keep_their_timer_and_baseline_across_a_swap() -> None:
    scenario = Scenario([PENDING, BASELINE, TWIN, GONE])
    _warm(scenario)
    assert kinds(scenario.reading(176, "wl-03", level_cm=60)) == ["firing"]
    assert kinds(scenario.reading(180, "wl-02", level_cm=70)) == ["pending"]

    twin_v2 = TWIN.model_copy(update={"version": 2})
    ended = scenario.at(185).engine.use_rules([PENDING, BASELINE, twin_v2, ADDED])
    assert [(t.rule.id, t.kind) for t in ended] == [("wet-03", "resolved")]

    spike = scenario.reading(190, "wl-01", level_cm=80)
    # The unchanged anomaly rule judges the spike against the baseline it had; its new-version twin
    # starts afresh and is still warming up.
    assert [(t.rule.id, t.kind) for t in spike] == [("odd-level", "firing")]
    assert scenario.reading(205, "wl-02", level_cm=71) == []  # still pending (and not silent)
    [fired] = scenario.tick(211)  # 30 s after the pending began, before the swap
    assert (fired.rule.id, fired.kind) == ("deep-water", "firing")
    assert kinds(scenario.reading(215, "wl-02", level_cm=95)) == ["firing"]  # the added rule runs
    assert scenario.reading(220, "wl-03", level_cm=70) == []  # the removed one no longer does


def test_a_swap_to_the_same_rules_changes_nothing() -> None:
    scenario = Scenario([PENDING])
    assert kinds(scenario.reading(0, "wl-02", level_cm=70)) == ["pending"]
    assert scenario.engine.use_rules([PENDING]) == []
    for seconds in (10, 20):  # the series goes on reporting: the timer may fire on it
        assert scenario.reading(seconds, "wl-02", level_cm=70) == []
    assert kinds(scenario.tick(30)) == ["firing"]


def test_plan_swap_sorts_rules_by_id_and_version() -> None:
    swap = plan_swap([PENDING, BASELINE, GONE], [PENDING, BASELINE.model_copy(update={"version": 2}), ADDED])
    assert (swap.kept, swap.changed, swap.removed, swap.added) == (
        frozenset({"deep-water"}),
        frozenset({"odd-level"}),
        frozenset({"wet-03"}),
        frozenset({"very-deep"}),
    )


def test_one_rule_goes_to_the_file_holding_its_id() -> None:
    files = {"water": rule_document([PENDING, GONE]), "api": rule_document([TWIN])}
    name, document = with_rule(files, PENDING.model_copy(update={"version": 2, "for_s": 60}), "api")
    assert name == "water"
    assert [Rule.model_validate(r).version for r in document["rules"]] == [2, 1]
    name, document = with_rule(files, ADDED, "api")
    assert (name, [r["id"] for r in document["rules"]]) == ("api", ["odd-level-twin", "very-deep"])


def test_a_rule_in_two_files_makes_no_rule_set() -> None:
    files = [("a", rule_document([PENDING])), ("b", rule_document([PENDING]))]
    with pytest.raises(ContractError, match="rule file b: rule deep-water is also in rule file a"):
        rules_of_files(files, {"flooding"})
