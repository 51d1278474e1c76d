"""Evidence in words: what the alert saw, with the sensor type's field name and unit and the rule's
threshold ("水位 72 cm ≥ 50 cm"), or a camera event as where and what ("摄像头画面 · 消防通道",
"画面中有物体停留") — never the stored dict, an event's UUID or a field's code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from alerts.rules import Rule
from api.console.i18n import EVENT_NAMES, TEXT, ZONE_NAMES
from api.console.names import Names
from contract.catalog import DeviceInfo
from contract.profiles import SensorTypeProfile

# A gateway's snapshot reference as edge/camera/snapshot.py names them: camera id / event uuid .jpg.
SNAPSHOT_REFERENCE = re.compile(
    r"[a-z0-9-]{1,64}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg"
)
OPERATORS = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "!=": "≠"}


def number(value: float) -> str:
    """A reading as people write it: 72, 72.5, 0.031 — no float noise."""
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"


def field_name(field: str, words: Mapping[str, str]) -> str:
    return words.get(f"dev_field_{field}", words["ev_reading"])


def value_text(value: Any, unit: str, words: Mapping[str, str]) -> str:
    """One value with its unit; booleans as yes/no, strings as they are."""
    if isinstance(value, bool):
        return words["yes"] if value else words["no"]
    if isinstance(value, int | float):
        return f"{number(float(value))} {unit}".strip()
    return str(value)


def _unit(of: DeviceInfo | SensorTypeProfile | None, field: str) -> str:
    profile = of.profile if isinstance(of, DeviceInfo) else of
    spec = profile.fields.get(field) if profile else None
    return (spec.unit or "") if spec else ""


def _reading(
    observed: Mapping[str, Any], field: str, info: DeviceInfo | None, words: Mapping[str, str]
) -> str:
    name = field_name(field, words)
    if field not in observed:
        return name
    value = observed[field]
    shown = value_text(value, _unit(info, field), words)
    return f"{name}{words['ev_sep']}{shown}" if isinstance(value, bool) else f"{name} {shown}"


def _threshold(
    rule: Rule, observed: Mapping[str, Any], info: DeviceInfo | None, words: Mapping[str, str]
) -> str:
    cond = rule.threshold
    assert cond is not None
    unit = _unit(info, cond.field)
    value = observed.get(cond.field)
    if isinstance(value, bool) or isinstance(cond.value, bool):
        return _reading(observed, cond.field, info, words)
    limit = value_text(cond.value, unit, words)
    return f"{_reading(observed, cond.field, info, words)} {OPERATORS[cond.op]} {limit}"


def _camera(observed: Mapping[str, Any], rule: Rule, lang: str) -> str:
    words = TEXT[lang]
    parts: list[str] = []
    zone = observed.get("zone")
    if isinstance(zone, str):
        parts.append(ZONE_NAMES[lang].get(zone, words["ev_unknown_zone"]))
    kind = rule.event.kind if rule.event else ""
    if kind in EVENT_NAMES[lang]:
        parts.append(EVENT_NAMES[lang][kind])
    phase = words.get(f"ev_phase_{observed.get('phase')}", "")
    if phase:
        parts.append(phase)
    score = observed.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        parts.append(words["ev_score"].format(score=round(100 * float(score))))
    return " · ".join(parts) or words["ev_camera"]


def evidence_text(
    observed: Mapping[str, Any],
    rule: Rule | None,
    info: DeviceInfo | None,
    lang: str,
    rule_names: Mapping[str, str] | None = None,
) -> str:
    """The evidence's observation as one line in ``lang``. ``rule_names`` names a composite's parts."""
    words = TEXT[lang]
    if rule is None:
        # A rule since removed: the readings of fields the catalogue knows, nothing else.
        known = [f for f in observed if f"dev_field_{f}" in words]
        return " · ".join(_reading(observed, f, info, words) for f in known) or words["ev_reading"]
    if rule.threshold is not None:
        return _threshold(rule, observed, info, words)
    if rule.rate is not None:
        unit = _unit(info, rule.rate.field)
        level = value_text(rule.rate.per_minute, unit, words)
        rate = words["ev_rate"].format(op=OPERATORS[rule.rate.op], level=level)
        return f"{_reading(observed, rule.rate.field, info, words)} · {rate}"
    if rule.anomaly is not None:
        return f"{_reading(observed, rule.anomaly.field, info, words)} · {words['ev_anomaly']}"
    if rule.stale is not None:
        return words["ev_stale"]
    if rule.gateway_offline is not None:
        stopped = observed.get("reason") == "stopped"
        return words["ev_gateway_stopped" if stopped else "ev_gateway_offline"]
    if rule.event is not None:
        if rule.event.kind.startswith("camera."):
            return _camera(observed, rule, lang)
        return EVENT_NAMES[lang].get(rule.event.kind, words["cond_event"])
    if rule.composite is not None:
        names = rule_names or {}
        return words["ev_composite"].format(
            rules=words["list_sep"].join(names.get(r, r) for r in rule.composite.rules)
        )
    return words["ev_reading"]


def describe(evidence: Any, community: str, names: Names) -> str:
    """An evidence row of a case (``EvidenceOut``) in words: its rule's and device's, its observation."""
    rule = names.rule_of(evidence.rule_id)
    info = names.resources.catalog.device_in(community, evidence.device)
    parts = {r.id: names.rule(r.id) for r in names.resources.rules}
    return evidence_text(evidence.observed, rule, info, names.lang, parts)


def where(evidence: Any, community: str, names: Names) -> str:
    """Where the evidence was seen: a camera as "摄像头画面 · 楼道东", a device by type and place, a
    gateway or grid by name."""
    rule = names.rule_of(evidence.rule_id)
    info = names.resources.catalog.device_in(community, evidence.device)
    if (
        info is not None
        and rule is not None
        and rule.event is not None
        and rule.event.kind.startswith("camera.")
    ):
        return (
            f"{names.words['ev_camera']} · {info.device.location or names.grid(info.device.grid, community)}"
        )
    return names.subject(evidence.device, community)


def condition_text(rule: Rule, names: Names) -> str:
    """A rule's condition in words, with its threshold and unit ("可燃气体浓度 ≥ 20 %LEL")."""
    words = names.words
    catalog = names.resources.catalog
    info: DeviceInfo | SensorTypeProfile | None = (
        catalog.profiles.get(rule.scope.type)
        if rule.scope.type
        else next((i for i in catalog.devices() if rule.scope.matches(i)), None)
    )
    if rule.threshold is not None:
        cond = rule.threshold
        limit = value_text(cond.value, _unit(info, cond.field), words)
        return f"{field_name(cond.field, words)} {OPERATORS[cond.op]} {limit}"
    if rule.rate is not None:
        level = value_text(rule.rate.per_minute, _unit(info, rule.rate.field), words)
        rate = words["ev_rate"].format(op=OPERATORS[rule.rate.op], level=level)
        return f"{field_name(rule.rate.field, words)} · {rate}"
    if rule.anomaly is not None:
        return f"{field_name(rule.anomaly.field, words)} · {words['ev_anomaly']}"
    if rule.event is not None:
        return EVENT_NAMES[names.lang].get(rule.event.kind, words["cond_event"])
    if rule.composite is not None:
        parts = words["list_sep"].join(names.rule(r) for r in rule.composite.rules)
        return words["ev_composite"].format(rules=parts)
    return words[f"cond_{rule.condition}"]


def snapshot_reference(observed: Mapping[str, Any]) -> str | None:
    """The camera snapshot a camera event's evidence names (kept on its gateway), if a valid one."""
    reference = observed.get("snapshot")
    if isinstance(reference, str) and SNAPSHOT_REFERENCE.fullmatch(reference):
        return reference
    return None
