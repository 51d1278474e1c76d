"""Sensor-type profiles: what a type of device reports, as data (one YAML file per type).

A profile fixes each field's type, so a field-type conflict can never reach the database: an integer
sent for a float field is stored as a float, a string sent for a number is rejected.

An optional ``protocol`` section says how a gateway reads the type off the wire (Modbus registers or
a serial line protocol). Everything derivable from it — register counts, struct formats, overlaps — is
derived and checked when the profile loads, so a wrong profile fails at load, not at poll.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.errors import ContractError
from contract.ids import FieldName, SensorTypeRef
from contract.messages import MAX_STRING_VALUE, EventKind

FieldType = Literal["float", "int", "bool", "string"]
Scalar = bool | int | float | str


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType = Field(description="Stored type; values are coerced to it or rejected.")
    unit: str | None = Field(default=None, description="Unit symbol, e.g. cm, °C, %LEL.")
    min: float | None = Field(default=None, description="Lowest physically valid value.")
    max: float | None = Field(default=None, description="Highest physically valid value.")
    normal: tuple[float, float] | None = Field(
        default=None, description="[lo, hi] a healthy device usually reports; the simulator stays inside it."
    )
    description: str = ""

    @model_validator(mode="after")
    def _range_is_ordered(self) -> FieldSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if (self.min is not None or self.max is not None) and self.type in ("bool", "string"):
            raise ValueError(f"a {self.type} field cannot have a range")
        if self.normal is not None:
            self._check_normal(*self.normal)
        return self

    def _check_normal(self, low: float, high: float) -> None:
        if self.type in ("bool", "string"):
            raise ValueError(f"a {self.type} field cannot have a normal band")
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"normal [{low}, {high}]: the low end must be below the high end")
        if (self.min is not None and low < self.min) or (self.max is not None and high > self.max):
            raise ValueError(f"normal [{low}, {high}] reaches outside the valid range {self.min}..{self.max}")

    def coerce(self, name: str, value: Scalar) -> Scalar:
        """The value as stored, or ContractError naming the field and what is wrong."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise ContractError(f"{name}: expected a boolean, got {value!r}")
            return value
        if self.type == "string":
            if not isinstance(value, str):
                raise ContractError(f"{name}: expected a string, got {value!r}")
            if len(value) > MAX_STRING_VALUE:  # what a Reading refuses, refused here with the field's name
                raise ContractError(f"{name}: string longer than {MAX_STRING_VALUE} characters")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContractError(f"{name}: expected a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # a source's NaN; a Reading refuses it
            raise ContractError(f"{name}: expected a finite number, got {value!r}")
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


ModbusFunction = Literal["holding", "input", "coil", "discrete"]
ModbusDataType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64"]

MODBUS_DATA_TYPES: dict[str, tuple[str, int]] = {
    # data type -> (struct format of one value, registers it spans); a new type is one row here.
    "bool": ("?", 1),
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "float32": ("f", 2),
    "float64": ("d", 4),
}
MAX_READ_REGISTERS = 125
"""Modbus limit for one read of holding/input registers (function 3/4)."""
MAX_READ_BITS = 2000
"""Modbus limit for one read of coils/discrete inputs (function 1/2)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModbusPoint(_Frozen):
    """Where one field lives in a Modbus slave and how its registers become a number."""

    function: ModbusFunction = Field(default="holding", description="Register table to read.")
    address: int = Field(ge=0, le=65535, description="Zero-based protocol address (PDU), not 4xxxx.")
    data_type: ModbusDataType = Field(default="uint16", description="Encoding of the raw value.")
    byte_order: Literal["big", "little"] = Field(default="big", description="Byte order in a register.")
    word_order: Literal["big", "little"] = Field(
        default="big", description="Register order of multi-register values; little = word swap."
    )
    scale: float = Field(default=1.0, description="value = raw * scale + offset")
    offset: float = 0.0

    @property
    def count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the value spans."""
        return MODBUS_DATA_TYPES[self.data_type][1]

    @property
    def is_bit(self) -> bool:
        return self.function in ("coil", "discrete")

    @model_validator(mode="after")
    def _fits(self) -> ModbusPoint:
        if self.is_bit and self.data_type != "bool":
            raise ValueError(f"a {self.function} is one bit: data_type must be bool, not {self.data_type}")
        if self.address + self.count - 1 > 65535:
            raise ValueError(f"{self.data_type} at address {self.address} runs past register 65535")
        if self.scale == 0:
            raise ValueError("scale 0 would turn every reading into the offset")
        return self


class ModbusProtocol(_Frozen):
    kind: Literal["modbus"]
    fields: dict[FieldName, ModbusPoint] = Field(min_length=1)
    max_gap: int = Field(
        default=8, ge=0, le=MAX_READ_REGISTERS, description="Unused registers one coalesced read may span."
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> ModbusProtocol:
        taken: dict[tuple[str, int], str] = {}
        for name, point in sorted(self.fields.items(), key=lambda item: item[1].address):
            for reg in range(point.address, point.address + point.count):
                other = taken.setdefault((point.function, reg), name)
                if other != name:
                    raise ValueError(
                        f"fields {other} and {name} overlap at {point.function} register {reg} "
                        f"({name} is {point.data_type}, {point.count} register(s) from {point.address})"
                    )
        return self


class LineField(_Frozen):
    """One value of a text line: a column (NMEA, CSV) or a key (JSON lines)."""

    column: int | None = Field(default=None, ge=0, description="0-based column after splitting.")
    key: str | None = Field(default=None, description="Key of a JSON-lines object.")
    convert: Literal["number", "int", "bool", "string", "nmea_lat", "nmea_lon"] = "number"
    scale: float = 1.0
    offset: float = 0.0


class SerialLineProtocol(_Frozen):
    kind: Literal["serial_line"]
    framing: Literal["delimiter", "length"] = "delimiter"
    delimiter: str = Field(default="\n", min_length=1, description="End of a frame (delimiter framing).")
    length: int | None = Field(default=None, gt=0, description="Bytes per frame (length framing).")
    max_frame_bytes: int = Field(default=256, gt=0, le=65536, description="Longer frames are garbage.")
    parser: Literal["nmea", "csv", "json"]
    sentence: str | None = Field(default=None, description="NMEA sentence type to keep, e.g. GGA.")
    separator: str = Field(default=",", min_length=1)
    checksum: Literal["none", "nmea"] = "none"
    fields: dict[FieldName, LineField] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SerialLineProtocol:
        if self.framing == "length" and self.length is None:
            raise ValueError("length framing needs length")
        if self.parser == "nmea" and (self.sentence is None or self.checksum != "nmea"):
            raise ValueError("the nmea parser needs a sentence type and checksum: nmea")
        for name, spec in self.fields.items():
            if self.parser == "json" and spec.key is None:
                raise ValueError(f"fields.{name}: the json parser needs a key")
            if self.parser != "json" and spec.column is None:
                raise ValueError(f"fields.{name}: the {self.parser} parser needs a column")
        return self


Protocol = Annotated[ModbusProtocol | SerialLineProtocol, Field(discriminator="kind")]

_COMPATIBLE: dict[str, frozenset[str]] = {
    # field type -> line conversions that produce it
    "float": frozenset({"number", "nmea_lat", "nmea_lon"}),
    "int": frozenset({"int"}),
    "bool": frozenset({"bool"}),
    "string": frozenset({"string"}),
}


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
    protocol: Protocol | None = Field(default=None, description="How a gateway reads it off the wire.")

    @model_validator(mode="after")
    def _reports_something(self) -> SensorTypeProfile:
        if not self.fields and not self.events:
            raise ValueError("a profile declares at least one field or event kind")
        return self

    @model_validator(mode="after")
    def _protocol_matches_fields(self) -> SensorTypeProfile:
        if self.protocol is None:
            return self
        for name in self.protocol.fields:
            if name not in self.fields:
                known = ", ".join(sorted(self.fields)) or "none"
                raise ValueError(f"protocol.fields.{name}: not a field of {self.id} (fields: {known})")
        if isinstance(self.protocol, ModbusProtocol):
            for name, point in self.protocol.fields.items():
                ftype = self.fields[name].type
                if ftype == "string":
                    raise ValueError(f"protocol.fields.{name}: a string field cannot come from Modbus")
                if (ftype == "bool") != (point.data_type == "bool"):
                    raise ValueError(
                        f"protocol.fields.{name}: a {ftype} field cannot be read as {point.data_type}"
                    )
        else:
            for name, spec in self.protocol.fields.items():
                ftype = self.fields[name].type
                if spec.convert not in _COMPATIBLE[ftype]:
                    raise ValueError(
                        f"protocol.fields.{name}: convert {spec.convert} does not give a {ftype}"
                    )
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
