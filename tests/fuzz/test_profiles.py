"""Fuzzing sensor-type profile YAML (with its protocol section) and community files, as loaded from disk.

Properties: any file — bytes, YAML text, YAML of any structure, a valid profile with one change —
loads or raises ContractError naming the file; generated valid profiles load to what was written.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from contract import ContractError
from contract.catalog import Community, load_model
from contract.messages import Reading
from contract.profiles import MODBUS_DATA_TYPES, FieldSpec, Scalar, SensorTypeProfile
from tests.fuzz.budget import fuzz
from tests.fuzz.reasons import expect_reason, load_or_reason
from tests.fuzz.strategies import EVENT_KIND, FIELD, ID, JSON, SENSOR_TYPE, mutated

CONFIG = Path(__file__).resolve().parents[2] / "config"
TS = 1764183600000


class Files:
    """Writes each example to a fresh file of a test's tmp dir (hypothesis runs many per test)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = itertools.count()

    def write(self, content: str | bytes) -> Path:
        path = self.root / f"{next(self._names)}.yaml"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("fuzz-yaml"))


YAML_TEXT = st.lists(
    st.sampled_from([*"{}[]:,-?!&*#|>'\"%@` \n\tabcxyz019.", "id: ", "fields:", "\n  ", "&a", "*a"]),
    max_size=60,
).map("".join)
"""Text made of YAML's syntax characters, so the YAML parser sees more than plain scalars."""


@fuzz(4)
@given(content=st.binary(max_size=256))
@example(content="名称: 温湿度".encode("gbk"))  # a profile saved in GBK, not UTF-8
def test_arbitrary_bytes(files: Files, content: bytes) -> None:
    load_or_reason(SensorTypeProfile, files.write(content))


@fuzz(6, deadline_ms=10_000)  # the nesting example below takes a second in PyYAML, more under load
@given(content=YAML_TEXT | st.text(max_size=120))
@example(content="[" * 2000)  # nesting deeper than the YAML constructor's recursion
@example(content="a: !!python/object/apply:os.system [true]")
def test_arbitrary_yaml_text(files: Files, content: str) -> None:
    load_or_reason(SensorTypeProfile, files.write(content))


@fuzz(4)
@given(doc=JSON)
def test_arbitrary_yaml_structures(files: Files, doc: object) -> None:
    load_or_reason(SensorTypeProfile, files.write(yaml.safe_dump(doc, allow_unicode=True)))


# --- valid profiles ---------------------------------------------------------------------------------

NUMBER = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False) | st.integers(-(10**9), 10**9)


@st.composite
def field_specs(draw: st.DrawFn, ftype: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": ftype}
    if draw(st.booleans()):
        spec["unit"] = draw(st.text(max_size=8))
    if ftype in ("int", "float") and draw(st.booleans()):
        low, high = sorted((draw(NUMBER), draw(NUMBER)))
        spec["min"], spec["max"] = low, high
    return spec


@st.composite
def modbus_protocols(draw: st.DrawFn, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    points: dict[str, Any] = {}
    taken: set[tuple[str, int]] = set()
    for name, spec in fields.items():
        if spec["type"] == "string":
            continue
        if spec["type"] == "bool":
            function = draw(st.sampled_from(["holding", "input", "coil", "discrete"]))
            data_type = "bool"
        else:
            function = draw(st.sampled_from(["holding", "input"]))
            data_type = draw(st.sampled_from(sorted(set(MODBUS_DATA_TYPES) - {"bool"})))
        count = MODBUS_DATA_TYPES[data_type][1]
        address = draw(st.integers(0, 65536 - count))
        span = {(function, r) for r in range(address, address + count)}
        if span & taken:
            continue  # an overlap is a different test's business
        taken |= span
        point: dict[str, Any] = {"function": function, "address": address, "data_type": data_type}
        if data_type != "bool":
            point["word_order"] = draw(st.sampled_from(["big", "little"]))
            point["byte_order"] = draw(st.sampled_from(["big", "little"]))
            point["scale"] = draw(st.sampled_from([1.0, 0.1, 0.01, 10.0, -1.0]))
        points[name] = point
    if not points:
        return None  # type: ignore[return-value]
    return {"kind": "modbus", "fields": points, "max_gap": draw(st.integers(0, 125))}


CONVERTS = {
    "float": ["number", "nmea_lat", "nmea_lon"],
    "int": ["int"],
    "bool": ["bool"],
    "string": ["string"],
}


@st.composite
def line_protocols(draw: st.DrawFn, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    parser = draw(st.sampled_from(["nmea", "csv", "json"]))
    protocol: dict[str, Any] = {"kind": "serial_line", "parser": parser}
    if parser == "nmea":
        protocol |= {"sentence": "GGA", "checksum": "nmea"}
    if draw(st.booleans()):
        protocol |= {"framing": "length", "length": draw(st.integers(1, 512))}
    else:
        protocol["delimiter"] = draw(st.sampled_from(["\n", "\r\n", ";", "\x03"]))
    protocol["max_frame_bytes"] = draw(st.integers(1, 65536))
    columns: dict[str, Any] = {}
    for name, spec in fields.items():
        column: dict[str, Any] = {"convert": draw(st.sampled_from(CONVERTS[spec["type"]]))}
        if parser == "json":
            column["key"] = draw(st.text(max_size=8))
        else:
            column["column"] = draw(st.integers(0, 20))
        columns[name] = column
    protocol["fields"] = columns
    return protocol


@st.composite
def profiles(draw: st.DrawFn) -> dict[str, Any]:
    types = st.sampled_from(["float", "int", "bool", "string"])
    fields = draw(st.dictionaries(FIELD, types.flatmap(field_specs), min_size=1, max_size=5))
    doc: dict[str, Any] = {
        "id": draw(SENSOR_TYPE),
        "name": draw(st.text(min_size=1, max_size=20)),
        "fields": fields,
        "events": draw(st.lists(EVENT_KIND, max_size=3)),
        "expected_interval_s": draw(st.floats(min_value=0.001, max_value=1e6)),
    }
    protocol = draw(st.none() | modbus_protocols(fields) | line_protocols(fields))
    if protocol is not None:
        doc["protocol"] = protocol
    return doc


@fuzz(8)
@given(doc=profiles())
@example(doc={"id": "a@1", "name": "\x85", "fields": {"a": {"type": "bool"}}})
def test_valid_profiles_load_as_written(files: Files, doc: dict[str, Any]) -> None:
    # Written with escapes: with allow_unicode PyYAML writes NEL/U+2028 raw into a quoted scalar,
    # where YAML folds them into a space, so the text would not say what the dict says.
    profile = load_model(SensorTypeProfile, files.write(yaml.safe_dump(doc)))
    assert profile == SensorTypeProfile.model_validate(doc)
    # What loads also writes back to YAML that loads to the same profile.
    again = yaml.safe_dump(profile.model_dump(mode="json"))
    assert load_model(SensorTypeProfile, files.write(again)) == profile


@fuzz(8)
@given(doc=mutated(profiles()))
@example(doc={"id": "a@1", "name": "n", "fields": {"a": {"type": "float", "min": 1, "max": 0}}})
def test_nearly_valid_profiles_load_or_say_why(files: Files, doc: object) -> None:
    load_or_reason(SensorTypeProfile, files.write(yaml.safe_dump(doc, allow_unicode=True)))


def shipped(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


SHIPPED_PROFILES = [shipped(p) for p in sorted((CONFIG / "sensor-types").glob("*.yaml"))]
SHIPPED_COMMUNITIES = [shipped(p) for p in sorted((CONFIG / "communities").glob("*.yaml"))]


@fuzz(4)
@given(doc=mutated(st.sampled_from(SHIPPED_PROFILES)))
def test_mutated_shipped_profiles_load_or_say_why(files: Files, doc: object) -> None:
    load_or_reason(SensorTypeProfile, files.write(yaml.safe_dump(doc, allow_unicode=True)))


@fuzz(2)
@given(doc=mutated(st.sampled_from(SHIPPED_COMMUNITIES), values=JSON | ID))
def test_mutated_community_files_load_or_say_why(files: Files, doc: object) -> None:
    load_or_reason(Community, files.write(yaml.safe_dump(doc, allow_unicode=True)))


# --- value coercion ---------------------------------------------------------------------------------

SCALAR = st.booleans() | st.integers() | st.floats() | st.text(max_size=300)


@fuzz(4)
@given(spec=st.sampled_from(["float", "int", "bool", "string"]).flatmap(field_specs), value=SCALAR)
@example(spec={"type": "float"}, value=math.nan)  # a plugin source's NaN must not reach a Reading
@example(spec={"type": "int"}, value=math.inf)
@example(spec={"type": "int", "min": 0, "max": 10}, value=-math.inf)
@example(spec={"type": "string"}, value="x" * 257)
def test_coerced_values_are_storable_or_refused(spec: dict[str, Any], value: Scalar) -> None:
    field = FieldSpec.model_validate(spec)
    try:
        stored = field.coerce("v", value)
    except ContractError as err:
        expect_reason(err, prefix="v")
        return
    assert isinstance(stored, {"float": float, "int": int, "bool": bool, "string": str}[field.type])
    assert Reading(device="d", ts=TS, values={"v": stored}).values["v"] == stored  # storable as it is
    if isinstance(stored, int | float) and not isinstance(stored, bool):
        assert field.min is None or stored >= field.min
        assert field.max is None or stored <= field.max
        assert math.isfinite(stored)
