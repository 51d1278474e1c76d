"""Alert rules as data (``config/rules/*.yaml``).

A rule watches the devices its scope selects with exactly one condition; severity and the case
category it opens travel with every alert it raises.

`for` and silence: a rule with ``for_s`` goes pending at the first breach and fires once the
condition has held that long — on a later breaching sample, or on the service's timer between
samples. The timer alone fires a per-sample rule (threshold, N-of-M, rate, anomaly) only while its
series is live: its newest sample arrived at most 3 sample intervals ago (and in any case within
1 s), the interval being the gap between the series' last two samples (before its second sample,
the device profile's ``expected_interval_s``). A silent series' pending alert waits: its next sample
decides (a breach fires at once, the duration having passed; a clear cancels it), or the data-stale
check cancels it (no data for 3 expected intervals, at least 30 s). Event, deadman, gateway and
composite rules are judged on facts and timers, so their `for` runs on the timer alone. Constants in
``alerts.engine`` (``SILENT_AFTER_INTERVALS``, ``SILENT_MIN_MS``); docs/reliability.md says more.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cases.categories import Category, CategoryCode
from contract.catalog import DeviceInfo, load_model
from contract.errors import ContractError
from contract.ids import FieldName, Id, SensorTypeRef
from contract.profiles import SensorTypeProfile

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
    for_s: float = Field(
        default=0,
        ge=0,
        description="Pending: the condition must hold this long to fire; a per-sample rule's series must "
        "still be reporting when the timer runs out (see the module's note on `for` and silence).",
    )
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


# -- rules as data, changed while running (#28) -----------------------------------------------------

RULE_SHAPE = "a rule is a mapping with id, version, scope, one condition, severity and category"
FILE_SHAPE = "a rule file holds `rules: [...]`, a list of rules"


def parse_rules(document: Any, source: str, *, file_expected: bool = False) -> tuple[list[Rule], bool]:
    """One rule or a rule file (``rules: [...]``), checked for shape; (rules, given as a file).

    ContractError naming the source, the field and the shape expected; a single rule where a file was
    expected (``file_expected``) is refused with what a file holds.
    """
    if isinstance(document, dict) and "rules" in document:
        try:
            return list(RuleFile.model_validate(document).rules), True
        except ValidationError as err:
            raise ContractError(_explain(err, source, FILE_SHAPE)) from err
    if not isinstance(document, dict):
        raise ContractError(
            f"{source}: {FILE_SHAPE}, or one rule ({RULE_SHAPE}); got {type(document).__name__}"
        )
    if file_expected:
        raise ContractError(
            f"{source}: rules: required, missing: {FILE_SHAPE}; this looks like one rule"
            + (f" ({document['id']})" if isinstance(document.get("id"), str) else "")
            + ": put it under `rules:` as a list item"
        )
    try:
        return [Rule.model_validate(document)], False
    except ValidationError as err:
        raise ContractError(_explain(err, source, f"{RULE_SHAPE}; {FILE_SHAPE}")) from err


def _explain(err: ValidationError, source: str, shape: str) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "document"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "required, missing"
        elif e["type"] == "extra_forbidden":
            message = "not a known key here (check its spelling and nesting)"
        parts.append(f"{where}: {message}")
    return f"{source}: {'; '.join(parts)} ({shape})"


def check_rules(
    rules: Sequence[Rule],
    source: str,
    *,
    types: Mapping[str, SensorTypeProfile] | None,
    categories: Collection[str],
    running: Iterable[Rule] = (),
    prefix: str = "rules",
) -> None:
    """What the shape cannot say: the category exists, the scope's type exists and has the watched
    field, ids are unique, composites name simple rules, and a changed rule has a new version.

    ``running`` is the set the rules join; ``types`` None skips the type checks (rules read back from
    the store were checked when written). ContractError naming the rule and field otherwise.
    """
    by_id = {r.id: r for r in running}
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"{source}: {prefix}.{index}." if prefix else f"{source}: "
        if rule.id in seen:
            raise ContractError(f"{where}id: {rule.id!r} is given twice; a rule id is unique")
        seen.add(rule.id)
        if rule.category not in categories:
            known = ", ".join(sorted(categories))
            raise ContractError(f"{where}category: unknown category {rule.category!r} (known: {known})")
        if types is not None and rule.scope.type is not None:
            profile = types.get(rule.scope.type)
            if profile is None:
                known = ", ".join(sorted(types)) or "none"
                raise ContractError(
                    f"{where}scope.type: unknown sensor type {rule.scope.type!r}; add its profile first "
                    f"(known: {known})"
                )
            if rule.field is not None and rule.field not in profile.fields:
                fields = ", ".join(sorted(profile.fields)) or "none"
                raise ContractError(
                    f"{where}{rule.condition}.field: {rule.field!r} is not a field of {profile.id} "
                    f"(fields: {fields})"
                )
        old = by_id.get(rule.id)
        if old is not None and old != rule:
            if rule.version == old.version:
                raise ContractError(
                    f"{where}version: rule {rule.id} changed but is still version {rule.version}; "
                    f"give it version {old.version + 1} (an unchanged id and version keeps its running state)"
                )
            if rule.version < old.version:
                raise ContractError(
                    f"{where}version: rule {rule.id} runs at version {old.version}; a change needs a "
                    f"higher version, not {rule.version}"
                )
    merged = {**by_id, **{r.id: r for r in rules}}
    for index, rule in enumerate(rules):
        where = f"{source}: {prefix}.{index}." if prefix else f"{source}: "
        for ref in rule.composite.rules if rule.composite else []:
            if ref not in merged:
                raise ContractError(f"{where}composite.rules: unknown rule {ref!r}")
            if merged[ref].composite is not None:
                raise ContractError(f"{where}composite.rules: {ref!r} is a composite; name simple rules")


def rule_document(rules: Iterable[Rule]) -> dict[str, Any]:
    """A rule file as stored: the canonical JSON of its rules (defaults left out)."""
    return {"rules": [r.model_dump(mode="json", exclude_defaults=True) for r in rules]}


def rules_of_files(files: Iterable[tuple[str, dict[str, Any]]], categories: Collection[str]) -> list[Rule]:
    """The running set of stored rule files (name, document); ContractError when they do not make one
    (a rule id in two files, a category since removed)."""
    rules: list[Rule] = []
    home: dict[str, str] = {}
    for name, document in files:
        for rule in parse_rules(document, f"rule file {name}", file_expected=True)[0]:
            if rule.id in home:
                raise ContractError(f"rule file {name}: rule {rule.id} is also in rule file {home[rule.id]}")
            if rule.category not in categories:
                raise ContractError(f"rule file {name}: rule {rule.id}: unknown category {rule.category!r}")
            home[rule.id] = name
            rules.append(rule)
    check_rules(rules, "rules", types=None, categories=categories, prefix="")
    return rules


def with_rule(
    files: Mapping[str, dict[str, Any]], rule: Rule, default_file: str
) -> tuple[str, dict[str, Any]]:
    """The rule file that takes one rule: the file holding its id (the rule replaced in place), else
    ``default_file`` with the rule added at the end; (file name, its new document)."""
    for name, document in files.items():
        rules = RuleFile.model_validate(document).rules
        if any(r.id == rule.id for r in rules):
            return name, rule_document(rule if r.id == rule.id else r for r in rules)
    existing = RuleFile.model_validate(files[default_file]).rules if default_file in files else []
    return default_file, rule_document([*existing, rule])


def config_rule_files(
    config_dir: Path,
    categories: Collection[str],
    types: Mapping[str, SensorTypeProfile],
    running: Iterable[Rule] = (),
) -> list[tuple[str, str, dict[str, Any]]]:
    """``config/rules/*.yaml`` checked completely (against the ``running`` rules: a changed rule needs
    a new version), as (name, source, stored document)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    every: list[Rule] = []
    running = list(running)
    for path in sorted((config_dir / "rules").glob("*.yaml")):
        rules = load_model(RuleFile, path).rules
        check_rules(rules, str(path), types=types, categories=categories, running=running)
        every += rules
        out.append((path.stem, str(path), rule_document(rules)))
    check_rules(every, str(config_dir / "rules"), types=types, categories=categories, prefix="")
    return out


def config_definitions(
    config_dir: Path,
    categories: Collection[str],
    stored_types: Mapping[str, SensorTypeProfile] | None = None,
    running: Iterable[Rule] = (),
) -> tuple[list[tuple[str, SensorTypeProfile]], list[tuple[str, str, dict[str, Any]]]]:
    """``config/sensor-types`` and ``config/rules`` read and checked completely, for the definitions
    store: (source, profile) pairs and (name, source, document) rule files. Rules may name a type of
    the files or one already stored."""
    paths = sorted((config_dir / "sensor-types").glob("*.yaml"))
    profiles = [(str(p), load_model(SensorTypeProfile, p)) for p in paths]
    types = {**(stored_types or {}), **{p.id: p for _, p in profiles}}
    return profiles, config_rule_files(config_dir, categories, types, running)


@dataclass(frozen=True, slots=True)
class RuleSwap:
    """How a new rule set differs from the running one, by id and version."""

    kept: frozenset[str]  # same id and version: running state carries over
    changed: frozenset[str]  # same id, another version: alert state carries over, windows start afresh
    removed: frozenset[str]
    added: frozenset[str]


def plan_swap(running: Iterable[Rule], new: Iterable[Rule]) -> RuleSwap:
    old = {r.id: r for r in running}
    fresh = {r.id: r for r in new}
    both = old.keys() & fresh.keys()
    return RuleSwap(
        kept=frozenset(i for i in both if old[i].version == fresh[i].version),
        changed=frozenset(i for i in both if old[i].version != fresh[i].version),
        removed=frozenset(old.keys() - fresh.keys()),
        added=frozenset(fresh.keys() - old.keys()),
    )
