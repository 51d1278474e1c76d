"""Alert rules as data (``config/rules/*.yaml``).

A rule watches the devices its scope selects with exactly one condition; severity and the case
category it opens travel with every alert it raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cases.categories import Category, CategoryCode
from contract.catalog import DeviceInfo, load_model
from contract.errors import ContractError
from contract.ids import FieldName, Id, SensorTypeRef

Scalar = bool | int | float | str
Operator = Literal[">=", ">", "<=", "<", "==", "!="]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Model):
    """Which devices a rule watches; every given key must match."""

    type: SensorTypeRef | None = None
    device: Id | None = None
    grid: Id | None = None
    community: Id | None = None

    def matches(self, info: DeviceInfo) -> bool:
        return (
            (self.type is None or self.type == info.profile.id)
            and (self.device is None or self.device == info.device.id)
            and (self.grid is None or self.grid == info.device.grid)
            and (self.community is None or self.community == info.community.id)
        )


def compare(left: Scalar, op: Operator, right: Scalar) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, bool | str) or isinstance(right, bool | str):
        return False  # an ordering of booleans or strings is never a breach
    return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[op]


class NOfM(_Model):
    n: int = Field(ge=1)
    m: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _n_within_m(self) -> NOfM:
        if self.n > self.m:
            raise ValueError(f"n ({self.n}) cannot exceed m ({self.m})")
        return self


class Threshold(_Model):
    field: FieldName
    op: Operator
    value: Scalar
    clear: float | None = Field(
        default=None, description="Hysteresis: a firing alert resolves only once the value passes this level."
    )
    n_of_m: NOfM | None = Field(default=None, description="Breach only when n of the last m samples breach.")

    @model_validator(mode="after")
    def _clear_is_on_the_safe_side(self) -> Threshold:
        if self.clear is None:
            return self
        if self.op not in (">=", ">", "<=", "<") or isinstance(self.value, bool | str):
            raise ValueError("clear needs a numeric comparison (>=, >, <=, <)")
        if (self.op in (">=", ">") and self.clear > self.value) or (
            self.op in ("<=", "<") and self.clear < self.value
        ):
            raise ValueError(f"clear level {self.clear} must lie on the safe side of {self.value}")
        return self

    def breached(self, value: Scalar) -> bool:
        return compare(value, self.op, self.value)

    def cleared(self, value: Scalar) -> bool:
        if self.clear is None:
            return not self.breached(value)
        return compare(value, "<" if self.op in (">=", ">") else ">", self.clear)


class Rate(_Model):
    """Change per minute over a sliding window, e.g. water rising faster than 5 cm/min."""

    field: FieldName
    window_s: float = Field(gt=0)
    op: Literal[">=", ">", "<=", "<"]
    per_minute: float
    clear_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Hysteresis: a firing alert resolves only once the rate is this fraction of the way "
        "from zero to the limit (toward the safe side); 1 resolves as soon as the limit is not met.",
    )

    @property
    def clear_level(self) -> float:
        # A rate that hovers at its limit measures above and below it sample after sample: without a
        # band the alert would fire and resolve again and again.
        band = (1 - self.clear_ratio) * abs(self.per_minute)
        return self.per_minute - band if self.op in (">=", ">") else self.per_minute + band

    def breached(self, per_minute: float) -> bool:
        return compare(per_minute, self.op, self.per_minute)

    def cleared(self, per_minute: float) -> bool:
        if self.op in (">=", ">"):
            return per_minute < self.clear_level
        return per_minute > self.clear_level


class Anomaly(_Model):
    """A value far from its own recent behaviour: robust z-score on a rolling median/MAD, or EWMA."""

    field: FieldName
    method: Literal["mad", "ewma"] = "mad"
    window: int = Field(default=60, ge=5, le=10_000, description="Samples in the rolling window (mad).")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Smoothing factor (ewma).")
    threshold: float = Field(default=6.0, gt=0, description="Robust z-score that counts as anomalous.")
    clear_ratio: float = Field(default=0.5, gt=0, le=1, description="Resolves below threshold × clear_ratio.")
    warmup: int = Field(default=30, ge=3, description="Samples needed before the condition can decide.")
    min_spread: float = Field(
        default=0.0, ge=0, description="Floor for MAD/σ, so a flat series is not all noise."
    )
    baseline: Literal["rolling", "hour_of_week"] = Field(
        default="rolling",
        description="hour_of_week keeps one EWMA baseline per hour of the week (daily rhythm).",
    )
    utc_offset_h: float = Field(default=8, description="Local time of the hour-of-week buckets.")


class Stale(_Model):
    """Deadman: no reading for ``factor`` × the profile's expected interval (at least ``min_s``)."""

    factor: float = Field(default=3.0, ge=1)
    min_s: float = Field(default=30.0, ge=1)


class EventMatch(_Model):
    kind: str
    attrs: dict[str, Scalar] = Field(default_factory=dict, description="Attributes the event must carry.")
    clear_kind: str | None = Field(
        default=None,
        description="A state reported as two instant events (device.unavailable / device.available): "
        "`kind` fires, `clear_kind` resolves, whatever their phase.",
    )


class GatewayOffline(_Model):
    """The gateway's last will (``online: false``) arrived: its devices' alerts are inhibited."""


class Composite(_Model):
    """Several rules firing in the same grid within a window, e.g. smoke sensor + camera haze."""

    op: Literal["all", "any"]
    rules: list[Id] = Field(min_length=2)
    window_s: float = Field(default=300, gt=0)


class Flapping(_Model):
    """More than ``max_changes`` firing/resolved changes within ``window_s`` mark the alert unstable."""

    window_s: float = Field(default=600, gt=0)
    max_changes: int = Field(default=4, ge=2)


CONDITIONS = ("threshold", "rate", "anomaly", "stale", "event", "gateway_offline", "composite")


class Rule(_Model):
    id: Id
    version: int = Field(ge=1)
    description: str = ""
    scope: Scope = Field(default_factory=Scope)
    threshold: Threshold | None = None
    rate: Rate | None = None
    anomaly: Anomaly | None = None
    stale: Stale | None = None
    event: EventMatch | None = None
    gateway_offline: GatewayOffline | None = None
    composite: Composite | None = None
    for_s: float = Field(default=0, ge=0, description="Pending: the condition must hold this long to fire.")
    flapping: Flapping = Field(default_factory=Flapping)
    severity: Literal["info", "warning", "critical"]
    category: CategoryCode

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        given = [name for name in CONDITIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a rule has exactly one condition of {', '.join(CONDITIONS)}; got {given or 'none'}"
            )
        return self

    @property
    def condition(self) -> str:
        return next(name for name in CONDITIONS if getattr(self, name) is not None)

    @property
    def field(self) -> str | None:
        """The reading field a per-sample condition watches."""
        for cond in (self.threshold, self.rate, self.anomaly):
            if cond is not None:
                return cond.field
        return None


class RuleFile(_Model):
    rules: list[Rule]


def load_rules(config_dir: Path, categories: dict[str, Category]) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in sorted((config_dir / "rules").glob("*.yaml")):
        for index, rule in enumerate(load_model(RuleFile, path).rules):
            where = f"{path}: rules.{index}"
            if rule.category not in categories:
                raise ContractError(f"{where}.category: unknown category {rule.category!r}")
            if rule.id in seen:
                raise ContractError(f"{where}.id: {rule.id!r} already defined in {seen[rule.id]}")
            seen[rule.id] = path
            rules.append(rule)
    by_id = {r.id: r for r in rules}
    for rule in rules:
        if rule.composite is not None:
            for ref in rule.composite.rules:
                if ref not in by_id or by_id[ref].composite is not None:
                    raise ContractError(
                        f"{seen[rule.id]}: rule {rule.id}: composite.rules: {ref!r} is not a simple rule"
                    )
    return rules
