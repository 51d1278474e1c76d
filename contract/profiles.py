"""Sensor-type profiles: what a type of device reports, as data (one YAML file per type).

A profile fixes each field's type, so a field-type conflict can never reach the database: an integer
sent for a float field is stored as a float, a string sent for a number is rejected.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.errors import ContractError
from contract.ids import FieldName, SensorTypeRef
from contract.messages import EventKind

FieldType = Literal["float", "int", "bool", "string"]
Scalar = bool | int | float | str


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType = Field(description="Stored type; values are coerced to it or rejected.")
    unit: str | None = Field(default=None, description="Unit symbol, e.g. cm, °C, %LEL.")
    min: float | None = Field(default=None, description="Lowest physically valid value.")
    max: float | None = Field(default=None, description="Highest physically valid value.")
    description: str = ""

    @model_validator(mode="after")
    def _range_is_ordered(self) -> FieldSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if (self.min is not None or self.max is not None) and self.type in ("bool", "string"):
            raise ValueError(f"a {self.type} field cannot have a range")
        return self

    def coerce(self, name: str, value: Scalar) -> Scalar:
        """The value as stored, or ContractError naming the field and what is wrong."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise ContractError(f"{name}: expected a boolean, got {value!r}")
            return value
        if self.type == "string":
            if not isinstance(value, str):
                raise ContractError(f"{name}: expected a string, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError(f"{name}: expected a number, got {value!r}")
        if self.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ContractError(f"{name}: expected an integer, got {value!r}")
            number: int | float = int(value)
        else:
            number = float(value)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ContractError(
                f"{name}={number} outside the valid range {self.min}..{self.max} {self.unit or ''}".rstrip()
            )
        return number


class SensorTypeProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SensorTypeRef = Field(description="Type and version, e.g. env.th@1.")
    name: str
    name_zh: str = ""
    description: str = ""
    fields: dict[FieldName, FieldSpec] = Field(default_factory=dict)
    events: list[EventKind] = Field(
        default_factory=list, description="Event kinds devices of this type emit."
    )
    expected_interval_s: float = Field(default=60, gt=0, description="How often a healthy device reports.")

    @model_validator(mode="after")
    def _reports_something(self) -> SensorTypeProfile:
        if not self.fields and not self.events:
            raise ValueError("a profile declares at least one field or event kind")
        return self

    @property
    def measurement(self) -> str:
        """Time-series measurement name: the type without its version (``env.th``)."""
        return self.id.split("@", 1)[0]

    def coerce_values(self, values: dict[str, Scalar]) -> dict[str, Scalar]:
        """Every value checked against its field spec; unknown fields are an error, not ignored."""
        out: dict[str, Scalar] = {}
        for name, value in values.items():
            spec = self.fields.get(name)
            if spec is None:
                known = ", ".join(sorted(self.fields)) or "none"
                raise ContractError(f"{name}: not a field of {self.id} (fields: {known})")
            out[name] = spec.coerce(name, value)
        return out
