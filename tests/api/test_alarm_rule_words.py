"""Rules in words (#23): each rule's condition and threshold, how long it must hold and when it clears,
for every kind of rule, in 简体中文 and English; and the rules page showing them."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.rules import Rule, load_rules
from api.console.i18n import TEXT
from api.console.names import Names
from api.console.rule_words import duration_words, rule_in_words
from api.settings import ApiSettings
from cases.policy import CasePolicy
from contract.catalog import load_catalog
from tests.api.conftest import console_login
from tests.platform import CONFIG_DIR

POLICY = CasePolicy.load(CONFIG_DIR)
RULES = load_rules(CONFIG_DIR, POLICY.categories)
# What Names reads of the app's resources: the shipped catalog, rules, categories and organisation.
RESOURCES: Any = SimpleNamespace(
    catalog=load_catalog(CONFIG_DIR), rules=RULES, categories=POLICY.categories, policy=POLICY
)


def words(spec: dict[str, Any], lang: str) -> str:
    base: dict[str, Any] = {"id": "r", "version": 1, "severity": "warning", "category": "flooding"}
    return rule_in_words(Rule.model_validate(base | spec), Names(lang, RESOURCES))


WATER = {"type": "water.level@1"}


@pytest.mark.parametrize(
    ("spec", "zh", "en"),
    [
        (  # threshold with hysteresis and a pending time: the issue's own example
            {
                "scope": WATER,
                "threshold": {"field": "level_cm", "op": ">=", "value": 50, "clear": 45},
                "for_s": 120,
            },
            "水位 ≥ 50 cm 持续 2 分钟，低于 45 cm 解除",
            "Water level ≥ 50 cm for 2 min, clears below 45 cm",
        ),
        (  # a low threshold clears above its level
            {
                "scope": {"type": "gateway.modem@1"},
                "threshold": {"field": "rsrp_dbm", "op": "<=", "value": -110, "clear": -105},
            },
            "参考信号接收功率 ≤ -110 dBm，高于 -105 dBm 解除",
            "Signal power (RSRP) ≤ -110 dBm, clears above -105 dBm",
        ),
        (  # N of M
            {
                "scope": WATER,
                "threshold": {"field": "level_cm", "op": ">", "value": 30, "n_of_m": {"n": 3, "m": 5}},
            },
            "水位 > 30 cm（最近 5 次读数中 3 次）",
            "Water level > 30 cm (in 3 of the last 5 readings)",
        ),
        (  # rate of change, with its hysteresis band
            {"scope": WATER, "rate": {"field": "level_cm", "window_s": 120, "op": ">=", "per_minute": 10}},
            "水位 变化速率 ≥ 10 cm/分钟（2 分钟内），速率回到 5 cm/分钟 解除",
            "Water level changing at ≥ 10 cm/min (over 2 min), clears once the rate is back to 5 cm/min",
        ),
        (  # rolling median/MAD with `for`
            {
                "scope": {"type": "gas.combustible@1"},
                "anomaly": {"field": "lel_pct", "method": "mad", "window": 120, "threshold": 8},
                "for_s": 20,
            },
            "可燃气体浓度 偏离最近 120 个读数的中位数超过 8 倍 MAD 持续 20 秒，回到 4 倍以内解除",
            "Combustible gas more than 8 MADs from the median of the last 120 readings for 20 s, "
            "clears once the score is below 4",
        ),
        (  # deadman: factor × the profile's interval (5 s), at least min_s
            {"scope": WATER, "stale": {"factor": 6, "min_s": 600}},
            "10 分钟没有数据",
            "no data for 10 min",
        ),
        (  # an event in a camera zone
            {
                "scope": {"type": "camera.events@1"},
                "event": {"kind": "camera.motion", "attrs": {"zone": "fire-lane"}},
            },
            "消防通道：画面中有物体停留",
            "something stays in view in the fire lane",
        ),
        (  # an event with its clearing event, held for a minute
            {"event": {"kind": "device.unavailable", "clear_kind": "device.available"}, "for_s": 60},
            "设备不可用 持续 1 分钟，设备恢复时解除",
            "device unavailable for 1 min, clears on “device back”",
        ),
        (
            {"gateway_offline": {}},
            "网关离线（收到断线遗嘱）",
            "the gateway went offline (its last will arrived)",
        ),
        (
            {"composite": {"op": "any", "rules": ["smoke-alarm", "camera-haze"], "window_s": 300}},
            "同一网格 5 分钟内烟感报警、摄像头画面烟雾状任一触发",
            "any of Smoke alarm, Smoke-like camera scene fires in one grid within 5 min",
        ),
    ],
)
def test_every_kind_of_rule_reads_as_a_sentence(spec: dict[str, Any], zh: str, en: str) -> None:
    assert words(spec, "zh") == zh
    assert words(spec, "en") == en


def test_durations_read_in_the_largest_whole_unit() -> None:
    zh, en = TEXT["zh"], TEXT["en"]
    assert [duration_words(s, zh) for s in (20, 60, 90, 120, 3600, 5400, 86_400, 604_800)] == [
        "20 秒",
        "1 分钟",
        "90 秒",
        "2 分钟",
        "1 小时",
        "90 分钟",
        "1 天",
        "7 天",
    ]
    assert duration_words(300, en) == "5 min"


def test_the_rules_page_shows_every_shipped_rule_in_words(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    console_login(client)
    for lang in ("zh", "en"):
        page = client.get("/console/rules", params={"lang": lang}).text
        assert TEXT[lang]["alm_condition"] in page
        cells = dict(re.findall(r'<tr data-rule="([^"]+)"[^>]*>.*?<td class="condition">([^<]*)</td>', page))
        assert cells == {r.id: html.escape(rule_in_words(r, Names(lang, RESOURCES))) for r in RULES}
    zh = client.get("/console/rules", params={"lang": "zh"}).text
    assert "水位 ≥ 50 cm，低于 40 cm 解除" in zh and "可燃气体浓度 ≥ 20 %LEL，低于 10 %LEL 解除" in zh
