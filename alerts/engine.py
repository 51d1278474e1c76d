"""The rule engine: readings and events in, alert transitions out. Pure: no I/O, clock passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from alerts.rules import Rule, Scalar
from contract import Event, Reading
from contract.catalog import Catalog, DeviceInfo

Status = Literal["firing", "resolved"]
# An instant event (a tamper detected once) fires and resolves at once; the case it opens stays open.
PHASE_TRANSITIONS: dict[str, list[Status]] = {
    "start": ["firing"],
    "update": ["firing"],
    "end": ["resolved"],
    "instant": ["firing", "resolved"],
}


@dataclass(frozen=True, slots=True)
class Transition:
    fingerprint: str
    rule: Rule
    info: DeviceInfo
    status: Status
    ts_ms: int
    observed: dict[str, Scalar] = field(default_factory=dict)


def fingerprint(rule: Rule, info: DeviceInfo) -> str:
    """An alert's identity: one rule on one device (like Alertmanager's label-set fingerprint)."""
    return f"{rule.id}|{info.community.id}|{info.device.id}"


class AlertEngine:
    def __init__(self, rules: Iterable[Rule], catalog: Catalog, firing: Iterable[str] = ()) -> None:
        self._catalog = catalog
        self._rules = list(rules)
        self._firing: set[str] = set(firing)

    @property
    def firing(self) -> frozenset[str]:
        return frozenset(self._firing)

    def _rules_for(self, info: DeviceInfo) -> list[Rule]:
        return [r for r in self._rules if r.scope.matches(info)]

    def _transition(
        self, rule: Rule, info: DeviceInfo, status: Status, ts_ms: int, observed: dict[str, Scalar]
    ) -> Transition | None:
        fp = fingerprint(rule, info)
        if (fp in self._firing) == (status == "firing"):
            return None  # already in that state: a repeated or redelivered reading changes nothing
        if status == "firing":
            self._firing.add(fp)
        else:
            self._firing.discard(fp)
        return Transition(fp, rule, info, status, ts_ms, observed)

    def on_reading(self, community: str, gateway: str, reading: Reading) -> list[Transition]:
        info = self._catalog.device(community, gateway, reading.device)
        if info is None:
            return []  # ingest dead-letters unknown devices; the engine has nothing to say about them
        out = []
        for rule in self._rules_for(info):
            if rule.threshold is None or rule.threshold.field not in reading.values:
                continue
            value = reading.values[rule.threshold.field]
            fp_firing = fingerprint(rule, info) in self._firing
            status: Status | None = None
            if not fp_firing and rule.threshold.breached(value):
                status = "firing"
            elif fp_firing and rule.threshold.cleared(value):
                status = "resolved"
            if status is not None:
                tr = self._transition(rule, info, status, reading.ts, {rule.threshold.field: value})
                if tr is not None:
                    out.append(tr)
        return out

    def on_event(self, community: str, gateway: str, event: Event) -> list[Transition]:
        info = self._catalog.device(community, gateway, event.device)
        if info is None:
            return []
        out = []
        for rule in self._rules_for(info):
            match = rule.event
            if match is None or match.kind != event.kind:
                continue
            if any(event.attrs.get(k) != v for k, v in match.attrs.items()):
                continue
            observed: dict[str, Scalar] = {"event_id": str(event.id), "phase": event.phase, **event.attrs}
            phases = PHASE_TRANSITIONS[event.phase]
            for status in phases:
                tr = self._transition(rule, info, status, event.ts, observed)
                if tr is not None:
                    out.append(tr)
        return out
