"""A rule's condition and threshold in words, for every kind of rule, in the user's language:
"水位 ≥ 50 cm 持续 2 分钟，低于 40 cm 解除" / "Water level ≥ 50 cm for 2 min, clears below 40 cm"."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.rules import Anomaly, Composite, EventMatch, Rate, Rule, Stale, Threshold
from api.console.evidence_text import OPERATORS, field_name, number, value_text
from api.console.i18n import EVENT_NAMES, ZONE_NAMES
from api.console.names import Names
from contract.profiles import SensorTypeProfile


def duration_words(seconds: float, words: Mapping[str, str]) -> str:
    """A span as people say it: 20 秒, 2 分钟, 1.5 小时, 7 天 (the largest unit that divides evenly
    enough to read)."""
    for key, size in (("rw_d", 86_400), ("rw_h", 3_600), ("rw_min", 60)):
        if seconds >= size and (seconds % size == 0 or seconds >= 2 * size):
            return words[key].format(n=number(round(seconds / size, 1)))
    return words["rw_s"].format(n=number(seconds))


def _profile(rule: Rule, names: Names) -> SensorTypeProfile | None:
    """The sensor type a rule watches: its scope's, or the type of the first device it matches."""
    catalog = names.resources.catalog
    if rule.scope.type:
        return catalog.profiles.get(rule.scope.type)
    return next((i.profile for i in catalog.devices() if rule.scope.matches(i)), None)


def _unit(profile: SensorTypeProfile | None, field: str) -> str:
    spec = profile.fields.get(field) if profile else None
    return (spec.unit or "") if spec else ""


def _threshold(cond: Threshold, profile: SensorTypeProfile | None, words: Mapping[str, str]) -> list[str]:
    unit = _unit(profile, cond.field)
    parts = [f"{field_name(cond.field, words)} {OPERATORS[cond.op]} {value_text(cond.value, unit, words)}"]
    if cond.n_of_m is not None:
        parts[0] += words["rw_n_of_m"].format(n=cond.n_of_m.n, m=cond.n_of_m.m)
    if cond.clear is not None:
        key = "rw_clear_below" if cond.op in (">=", ">") else "rw_clear_above"
        parts.append(words[key].format(level=value_text(cond.clear, unit, words)))
    return parts


def _rate(cond: Rate, profile: SensorTypeProfile | None, words: Mapping[str, str]) -> list[str]:
    unit = _unit(profile, cond.field)
    return [
        words["rw_rate"].format(
            field=field_name(cond.field, words),
            op=OPERATORS[cond.op],
            level=value_text(cond.per_minute, unit, words),
            window=duration_words(cond.window_s, words),
        ),
        words["rw_rate_clear"].format(level=value_text(cond.clear_level, unit, words)),
    ]


def _anomaly(cond: Anomaly, words: Mapping[str, str]) -> list[str]:
    key = "rw_anomaly_mad" if cond.method == "mad" else "rw_anomaly_ewma"
    text = words[key].format(
        field=field_name(cond.field, words), threshold=number(cond.threshold), window=cond.window
    )
    if cond.baseline == "hour_of_week":
        text += words["rw_hour_of_week"]
    return [text, words["rw_anomaly_clear"].format(level=number(cond.threshold * cond.clear_ratio))]


def _stale(cond: Stale, profile: SensorTypeProfile | None, words: Mapping[str, str]) -> list[str]:
    if profile is None:
        return [
            words["rw_stale_factor"].format(
                factor=number(cond.factor), least=duration_words(cond.min_s, words)
            )
        ]
    silence = max(cond.factor * profile.expected_interval_s, cond.min_s)
    return [words["rw_stale"].format(duration=duration_words(silence, words))]


def _event(cond: EventMatch, lang: str, words: Mapping[str, str]) -> list[str]:
    events = EVENT_NAMES[lang]
    text = events.get(cond.kind, words["cond_event"])
    zone = cond.attrs.get("zone")
    if isinstance(zone, str):
        text = words["rw_event_in"].format(
            event=text, zone=ZONE_NAMES[lang].get(zone, words["ev_unknown_zone"])
        )
    parts = [text]
    if cond.clear_kind:
        parts.append(words["rw_event_clear"].format(event=events.get(cond.clear_kind, words["cond_event"])))
    return parts


def _composite(cond: Composite, names: Names) -> list[str]:
    words = names.words
    rules = words["list_sep"].join(names.rule(r) for r in cond.rules)
    key = "rw_composite_all" if cond.op == "all" else "rw_composite_any"
    return [words[key].format(rules=rules, window=duration_words(cond.window_s, words))]


def rule_in_words(rule: Rule, names: Names) -> str:
    """The rule's condition, its threshold with unit, how long it must hold, and when it clears."""
    words = names.words
    profile = _profile(rule, names)
    if rule.threshold is not None:
        parts = _threshold(rule.threshold, profile, words)
    elif rule.rate is not None:
        parts = _rate(rule.rate, profile, words)
    elif rule.anomaly is not None:
        parts = _anomaly(rule.anomaly, words)
    elif rule.stale is not None:
        parts = _stale(rule.stale, profile, words)
    elif rule.event is not None:
        parts = _event(rule.event, names.lang, words)
    elif rule.composite is not None:
        parts = _composite(rule.composite, names)
    else:
        parts = [words["rw_gateway_offline"]]
    if rule.for_s:
        parts[0] += words["rw_for"].format(duration=duration_words(rule.for_s, words))
    return words["rw_sep"].join(parts)
