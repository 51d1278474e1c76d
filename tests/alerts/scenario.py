"""A tiny scenario language for alert tests: steps in, the exact transitions out, on a manual clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alerts.engine import AlertEngine, Transition
from alerts.rules import Rule
from contract import Event, Reading, StateMessage
from contract.catalog import Catalog, load_catalog

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = 1_780_000_000_000  # a Monday morning in 2026, epoch ms
GATEWAY_OF = {
    "wl-01": "gw-01",
    "wl-02": "gw-01",
    "th-0101": "gw-01",
    "sm-0101": "gw-01",
    "cam-01": "gw-01",
    "wl-03": "gw-02",
    "sm-0301": "gw-02",
}
_catalog: Catalog | None = None


def catalog() -> Catalog:
    global _catalog
    if _catalog is None:
        _catalog = load_catalog(CONFIG)
    return _catalog


def rule(**spec: Any) -> Rule:
    base: dict[str, Any] = {"id": "r", "version": 1, "severity": "critical", "category": "flooding"}
    return Rule.model_validate(base | spec)


@dataclass
class Clock:
    now_ms: int = T0

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Scenario:
    rules: list[Rule]
    clock: Clock = field(default_factory=Clock)
    engine: AlertEngine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = AlertEngine(self.rules, catalog(), clock=self.clock)

    def at(self, seconds: float) -> Scenario:
        self.clock.now_ms = T0 + int(seconds * 1000)
        return self

    def reading(self, seconds: float, device: str = "wl-01", **values: Any) -> list[Transition]:
        self.at(seconds)
        reading = Reading(device=device, ts=self.clock.now_ms, values=values or {"level_cm": 0.0})
        return self.engine.on_reading("zhuganxiang", GATEWAY_OF[device], reading)

    def event(
        self,
        seconds: float,
        phase: str,
        device: str = "cam-01",
        kind: str = "camera.motion",
        event_id: uuid.UUID | None = None,
        **attrs: Any,
    ) -> list[Transition]:
        self.at(seconds)
        event = Event(
            device=device,
            ts=self.clock.now_ms,
            id=event_id or uuid.uuid4(),
            kind=kind,
            phase=phase,  # type: ignore[arg-type]
            attrs=attrs,
        )
        return self.engine.on_event("zhuganxiang", GATEWAY_OF[device], event)

    def state(
        self, seconds: float, gateway: str, online: bool, reason: Literal["stopped"] | None = None
    ) -> list[Transition]:
        """A state message as a gateway sends it: a last will has neither ``ts`` nor ``reason``."""
        self.at(seconds)
        if online:
            message = StateMessage(online=True, ts=self.clock.now_ms)
        elif reason is not None:
            message = StateMessage(online=False, ts=self.clock.now_ms, reason=reason)
        else:
            message = StateMessage(online=False)
        return self.engine.on_state("zhuganxiang", gateway, message)

    def tick(self, seconds: float) -> list[Transition]:
        return self.at(seconds).engine.tick()


def kinds(transitions: list[Transition]) -> list[str]:
    return [t.kind for t in transitions]


def series_of(
    scenario: Scenario, steps: list[tuple[float, float]], field_name: str = "level_cm", device: str = "wl-01"
) -> list[tuple[float, str]]:
    """Feed (seconds, value) readings; return (seconds, kind) for every transition."""
    out: list[tuple[float, str]] = []
    for seconds, value in steps:
        for t in scenario.reading(seconds, device, **{field_name: value}):
            out.append((seconds, t.kind))
    return out
