"""Fuzzing the run-time configuration parsers: the gateway file, a remote device set (``config``
message), and the alert rule and category files.

Properties: a mutated shipped file (one value replaced, one key dropped or added) or a YAML document
of any shape loads, or is refused with ContractError/ConfigError and a reason — never another exception;
a remote device set that validates is built into sources or refused with ConfigError, as the agent does.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.rules import Rule, RuleFile, load_rules
from cases.categories import Category, CategoryFile, load_categories
from contract import ContractError, TopicKind, decode_message
from contract.messages import ConfigMessage
from edge.agent import describe
from edge.gateway_config import DeviceSet, GatewayConfig
from edge.sources.base import ConfigError
from edge.sources.build import build_sources, load_profiles
from edge.sources.registry import load_sources
from tests.fuzz.budget import fuzz
from tests.fuzz.reasons import expect_reason, load_or_reason
from tests.fuzz.strategies import FIELD, ID, JSON, SENSOR_TYPE, mutated

CONFIG = Path(__file__).resolve().parents[2] / "config"
GATEWAY_FILES = sorted((CONFIG / "gateways").glob("*.yaml"))
RULE_FILES = sorted((CONFIG / "rules").glob("*.yaml"))
PROFILES = load_profiles(CONFIG)
FACTORIES = load_sources(plugins=False)


def shipped(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


GATEWAYS = [shipped(p) for p in GATEWAY_FILES]
DEVICE_SETS = [{k: g[k] for k in ("buses", "modem") if k in g} for g in GATEWAYS]
RULES = [rule for path in RULE_FILES for rule in shipped(path)["rules"]]
CATEGORIES = shipped(CONFIG / "categories.yaml")
VALUES = (
    JSON | ID | SENSOR_TYPE | st.sampled_from(["modbus_rtu", "modbus_tcp", "serial_line", ">=", "critical"])
)


class Files:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = itertools.count()

    def write(self, doc: object, name: str | None = None, root: Path | None = None) -> Path:
        path = (root or self.root) / (name or f"{next(self._names)}.yaml")
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("fuzz-config"))


@fuzz(6)
@given(doc=mutated(st.sampled_from(GATEWAYS), values=VALUES))
def test_mutated_gateway_files_load_or_say_why(files: Files, doc: object) -> None:
    config = load_or_reason(GatewayConfig, files.write(doc))
    if config is not None:
        apply_device_set(config.device_set().model_dump(mode="json"))


@fuzz(2)
@given(doc=JSON)
def test_gateway_files_of_any_shape(files: Files, doc: object) -> None:
    load_or_reason(GatewayConfig, files.write(doc))


def apply_device_set(device_set: object) -> None:
    """What the agent does with a remote ``config`` message, up to (not including) starting sources."""
    payload = json.dumps({"hash": "0123456789abcdef", "config": device_set})
    try:
        message = decode_message(TopicKind.CONFIG, payload)
        assert isinstance(message, ConfigMessage)
        try:
            valid = DeviceSet.model_validate(message.config)
        except ValidationError as err:
            raise ConfigError(describe(err)) from err
        build_sources(valid, PROFILES, FACTORIES)
    except (ContractError, ConfigError) as err:
        expect_reason(err)


@fuzz(10)
@given(doc=mutated(st.sampled_from(DEVICE_SETS), values=VALUES))
@example(
    doc={
        "buses": [
            {
                "id": "b",
                "kind": "modbus_rtu",
                "port": "/dev/x",
                "devices": [{"id": "d", "type": "geo.gps@1", "unit": 1}],
            }
        ]
    }
)
@example(
    doc={
        "buses": [
            {"id": "b", "kind": "serial_line", "port": "/dev/x", "devices": [{"id": "d", "type": "env.th@1"}]}
        ]
    }
)
def test_remote_device_sets_apply_or_say_why(doc: object) -> None:
    apply_device_set(doc)


# --- alert rules and categories ---------------------------------------------------------------------


@fuzz(8)
@given(rule=mutated(st.sampled_from(RULES), values=VALUES | FIELD))
@example(
    rule={
        "id": "r",
        "version": 1,
        "threshold": {"field": "a", "op": ">=", "value": "x", "clear": 1},
        "severity": "info",
        "category": "flooding",
    }
)
@example(
    rule={
        "id": "r",
        "version": 1,
        "threshold": {"field": "a", "op": ">=", "value": 1e308, "clear": -1e308},
        "severity": "info",
        "category": "flooding",
    }
)
def test_mutated_rules_load_or_say_why(files: Files, rule: object) -> None:
    loaded = load_or_reason(RuleFile, files.write({"rules": [rule]}))
    if loaded is not None:
        # A rule that loads is one the engine can evaluate: exactly one condition, a field if per-sample.
        (only,) = loaded.rules
        assert isinstance(only, Rule)
        assert only.condition in {
            "threshold",
            "rate",
            "anomaly",
            "stale",
            "event",
            "gateway_offline",
            "composite",
        }


@fuzz(2)
@given(doc=JSON)
def test_rule_files_of_any_shape(files: Files, doc: object) -> None:
    load_or_reason(RuleFile, files.write(doc))


@fuzz(4)
@given(data=st.data())
def test_rule_directories_load_or_say_why(files: Files, data: st.DataObject) -> None:
    """``load_rules`` cross-checks categories, duplicate ids and composite references across files."""
    root = files.root / f"dir-{next(files._names)}"
    (root / "rules").mkdir(parents=True)
    rules = data.draw(
        st.lists(mutated(st.sampled_from(RULES), values=VALUES) | st.sampled_from(RULES), max_size=6)
    )
    split = data.draw(st.integers(0, len(rules)))
    files.write({"rules": rules[:split]}, "a.yaml", root / "rules")
    files.write({"rules": rules[split:]}, "b.yaml", root / "rules")
    files.write(
        data.draw(mutated(st.just(CATEGORIES), values=VALUES) | st.just(CATEGORIES)), "categories.yaml", root
    )
    try:
        categories = load_categories(root)
        loaded = load_rules(root, categories)
    except ContractError as err:
        expect_reason(err)
        return
    assert all(isinstance(c, Category) for c in categories.values())
    assert all(r.category in categories for r in loaded)
    assert len({r.id for r in loaded}) == len(loaded)


@fuzz(2)
@given(doc=mutated(st.just(CATEGORIES), values=VALUES))
def test_mutated_category_files_load_or_say_why(files: Files, doc: object) -> None:
    load_or_reason(CategoryFile, files.write(doc))
