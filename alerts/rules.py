"""Alert rules and case categories as data (``config/rules/*.yaml``, ``config/categories.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.catalog import DeviceInfo, load_model
from contract.errors import ContractError
from contract.ids import FieldName, Id, SensorTypeRef

Scalar = bool | int | float | str
Operator = Literal[">=", ">", "<=", "<", "==", "!="]
CategoryCode = FieldName  # e.g. flooding, fire_lane_blocked


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


class Threshold(_Model):
    field: FieldName
    op: Operator
    value: Scalar
    clear: float | None = Field(
        default=None, description="Hysteresis: a firing alert resolves only once the value passes this level."
    )

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
        return _compare(value, self.op, self.value)

    def cleared(self, value: Scalar) -> bool:
        if self.clear is None:
            return not self.breached(value)
        return _compare(value, "<" if self.op in (">=", ">") else ">", self.clear)


def _compare(left: Scalar, op: Operator, right: Scalar) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, bool | str) or isinstance(right, bool | str):
        return False  # an ordering of booleans or strings is never a breach
    return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[op]


class EventMatch(_Model):
    kind: str
    attrs: dict[str, Scalar] = Field(default_factory=dict, description="Attributes the event must carry.")


class Rule(_Model):
    id: Id
    version: int = Field(ge=1)
    description: str = ""
    scope: Scope
    threshold: Threshold | None = None
    event: EventMatch | None = None
    severity: Literal["info", "warning", "critical"]
    category: CategoryCode

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        if (self.threshold is None) == (self.event is None):
            raise ValueError("a rule has exactly one condition: threshold or event")
        return self


class RuleFile(_Model):
    rules: list[Rule]


class Category(_Model):
    code: CategoryCode
    name_zh: str
    name_en: str
    sla_hours: float = Field(gt=0)


class CategoryFile(_Model):
    categories: list[Category]


def load_categories(config_dir: Path) -> dict[str, Category]:
    return {c.code: c for c in load_model(CategoryFile, config_dir / "categories.yaml").categories}


def load_rules(config_dir: Path, categories: dict[str, Category]) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in sorted((config_dir / "rules").glob("*.yaml")):
        for index, rule in enumerate(load_model(RuleFile, path).rules):
            if rule.category not in categories:
                raise ContractError(f"{path}: rules.{index}.category: unknown category {rule.category!r}")
            if rule.id in seen:
                raise ContractError(
                    f"{path}: rules.{index}.id: {rule.id!r} already defined in {seen[rule.id]}"
                )
            seen[rule.id] = path
            rules.append(rule)
    return rules
