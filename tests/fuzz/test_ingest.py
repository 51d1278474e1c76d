"""Fuzzing ingest: telemetry/event decoding against the catalog (slow and fast path), and the InfluxDB
line-protocol encoder.

Properties: any payload on any topic decodes or raises ContractError with a reason; the fast path
never raises and never disagrees with the contract's decoder; any point either encodes to exactly one
line that a strict parser of the line-protocol grammar reads back to the same point, or is refused
with StoreRejected and a reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from contract import ContractError
from contract.catalog import Catalog, Community
from contract.profiles import SensorTypeProfile
from ingest.fastpath import FastDecoder
from ingest.validate import decode_telemetry
from series.lineprotocol import TS_MS_MAX, TS_MS_MIN, encode_point, encode_points, present_tags
from series.store import Point, Scalar, StoreRejected
from tests.fuzz.budget import fuzz
from tests.fuzz.reasons import expect_reason
from tests.fuzz.strategies import JSON, TS_MS, VALUE, events, mutated

# --- a strict line-protocol parser ------------------------------------------------------------------


class Unparsable(Exception):
    pass


def _name(line: str, i: int, stops: str, escapable: str) -> tuple[str, int]:
    """An unquoted name from ``i`` to the first unescaped stop character; ``\\x`` is x for x escapable."""
    out: list[str] = []
    while i < len(line) and line[i] not in stops:
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
        else:
            out.append(line[i])
            i += 1
    if not out:
        raise Unparsable(f"empty name at {i} in {line!r}")
    return "".join(out), i


def _expect(line: str, i: int, char: str) -> int:
    if i >= len(line) or line[i] != char:
        raise Unparsable(f"expected {char!r} at {i} in {line!r}")
    return i + 1


def _value(line: str, i: int) -> tuple[Scalar, int]:
    if i < len(line) and line[i] == '"':
        out: list[str] = []
        i += 1
        while True:
            if i >= len(line):
                raise Unparsable(f"unterminated string in {line!r}")
            if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in '\\"':
                out.append(line[i + 1])
                i += 2
            elif line[i] == '"':
                return "".join(out), i + 1
            elif line[i] == "\\":
                raise Unparsable(f"bare backslash in a string at {i} of {line!r}")
            else:
                out.append(line[i])
                i += 1
    end = i
    while end < len(line) and line[end] not in ", ":
        end += 1
    token = line[i:end]
    if token in ("true", "false"):
        return token == "true", end
    if token.endswith("i") and token[:-1].lstrip("-").isdigit():
        return int(token[:-1]), end
    try:
        number = float(token)
    except ValueError:
        raise Unparsable(f"bad field value {token!r} in {line!r}") from None
    if not math.isfinite(number) or not any(c.isdigit() for c in token):
        raise Unparsable(f"bad float {token!r} in {line!r}")
    return number, end


def parse_line(line: str) -> Point:
    """One line of InfluxDB line protocol, strictly: every separator must be where the grammar says."""
    if "\n" in line or "\r" in line or line.startswith("#"):
        raise Unparsable(f"not one line: {line!r}")
    measurement, i = _name(line, 0, ", ", ", ")
    tags: dict[str, str] = {}
    while i < len(line) and line[i] == ",":
        key, i = _name(line, i + 1, ",= ", ",= ")
        i = _expect(line, i, "=")
        tags[key], i = _name(line, i, ", ", ",= ")
    i = _expect(line, i, " ")
    fields: dict[str, Scalar] = {}
    while True:
        key, i = _name(line, i, ",= ", ",= ")
        i = _expect(line, i, "=")
        fields[key], i = _value(line, i)
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        break
    i = _expect(line, i, " ")
    ts = line[i:]
    if not ts.lstrip("-").isdigit():
        raise Unparsable(f"bad timestamp {ts!r} in {line!r}")
    return Point(measurement, tags, fields, int(ts))


# --- line protocol ----------------------------------------------------------------------------------

NASTY = st.sampled_from([",", "=", " ", "\\", '"', "#", "\n", "\r", "\t", "网格", "é", "\x00", "i", "time"])
TEXT = st.lists(NASTY | st.text(max_size=3), max_size=6).map("".join)
FIELD_VALUE = (
    st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | TEXT
    | st.text(max_size=20)
)


@fuzz(12)
@given(
    measurement=TEXT,
    tags=st.dictionaries(TEXT, TEXT, max_size=4),
    fields=st.dictionaries(TEXT, FIELD_VALUE, max_size=4),
    ts=st.integers(min_value=TS_MS_MIN - 10, max_value=TS_MS_MAX + 10) | st.integers(),
)
@example(measurement="m", tags={"k": "a\\"}, fields={"f": 1}, ts=0)  # a trailing backslash
@example(measurement="m", tags={}, fields={"s": 'x\\"\ny'}, ts=0)  # a newline inside a string
@example(measurement="m\\ x", tags={}, fields={"f": 1}, ts=0)
def test_points_encode_to_one_line_that_reads_back(
    measurement: str, tags: dict[str, str], fields: dict[str, Scalar], ts: int
) -> None:
    point = Point(measurement, tags, fields, ts)
    try:
        line = encode_point(point)
    except StoreRejected as err:
        expect_reason(err)
        return
    back = parse_line(line)
    assert back.measurement == measurement
    assert back.tags == dict(present_tags(tags))
    assert back.ts_ms == ts
    assert set(back.fields) == set(fields)
    for key, value in fields.items():
        if isinstance(value, float):
            assert back.fields[key] == value and isinstance(back.fields[key], float)
        else:
            assert back.fields[key] == value and type(back.fields[key]) is type(value)


@fuzz(2)
@given(
    points=st.lists(
        st.builds(
            Point,
            TEXT,
            st.dictionaries(TEXT, TEXT, max_size=2),
            st.dictionaries(TEXT, FIELD_VALUE, max_size=2),
            st.integers(-(10**6), 10**6),
        ),
        max_size=5,
    )
)
def test_a_batch_keeps_the_valid_lines_and_explains_the_rest(points: list[Point]) -> None:
    lines, refused = encode_points(points)
    assert len(lines) + len(refused) == len(points)
    for line in lines:
        parse_line(line)
    for reason in refused:
        index, _, why = reason.partition(": ")
        assert index.startswith("#") and why.strip()


# --- telemetry and events against a catalog ---------------------------------------------------------

PROFILE = SensorTypeProfile.model_validate(
    {
        "id": "test.all@1",
        "name": "every field type",
        "fields": {
            "level": {"type": "float", "min": -100, "max": 100},
            "count": {"type": "int", "min": 0},
            "alarm": {"type": "bool"},
            "note": {"type": "string"},
        },
        "events": ["door.open"],
    }
)
CATALOG = Catalog(
    [
        Community.model_validate(
            {
                "id": "c1",
                "name": "社区",
                "grids": [{"id": "g-1", "name": "一网格"}],
                "gateways": [
                    {
                        "id": "gw-1",
                        "devices": [{"id": f"d-{n}", "type": "test.all@1", "grid": "g-1"} for n in range(3)],
                    }
                ],
            }
        )
    ],
    [PROFILE],
)
TELEMETRY = "yiwang/v1/c1/gw-1/telemetry"
TOPICS = st.sampled_from(
    [TELEMETRY, "yiwang/v1/c1/gw-1/event", "yiwang/v1/c1/gw-2/telemetry", "yiwang/v1/c1/gw-1/state"]
) | st.text(max_size=40)

CATALOG_VALUES = {
    "level": st.floats(min_value=-100, max_value=100) | st.integers(-100, 100) | VALUE,
    "count": st.integers(0, 2**63 - 1) | VALUE,
    "alarm": st.booleans() | VALUE,
    "note": st.text(max_size=256) | VALUE,
}


@st.composite
def catalog_readings(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(CATALOG_VALUES)), min_size=1, max_size=4, unique=True))
    return {
        "device": draw(st.sampled_from(["d-0", "d-1", "d-2"])),
        "ts": draw(TS_MS),
        "values": {name: draw(CATALOG_VALUES[name]) for name in names},
    }


@st.composite
def catalog_telemetry(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "seq": draw(st.integers(0, 2**63 - 1)),
        "readings": draw(st.lists(catalog_readings(), min_size=1, max_size=4)),
    }


def ingest(topic: str, payload: bytes) -> None:
    """Decode as ingest does (fast path, then the contract's decoder) and check the outcome."""
    fast = FastDecoder(CATALOG).decode(topic, payload)
    fast_lines = FastDecoder(CATALOG, lines=True).decode(topic, payload)
    try:
        slow = decode_telemetry(topic, payload, CATALOG)
    except ContractError as err:
        expect_reason(err)
        refused: str | None = err.reason
    else:
        refused = None
    if refused is not None:
        assert fast is None, f"fast path accepted what the contract refuses: {refused}"
        assert fast_lines is None, f"fast path (lines) accepted what the contract refuses: {refused}"
        return
    assert fast is None or fast == slow
    # Lines only where every point encodes, and then exactly the encoder's lines.
    assert fast_lines is None or fast_lines.points == [encode_point(p) for p in slow.points]
    for point in slow.points:
        try:
            line = encode_point(point)
        except StoreRejected as err:  # e.g. a line break inside a string value
            expect_reason(err)
            continue
        back = parse_line(line)
        assert (back.measurement, back.ts_ms, dict(back.fields)) == (
            point.measurement,
            point.ts_ms,
            dict(point.fields),
        )
    if fast_lines is not None:  # its lines read back as the contract's points
        for line, point in zip(fast_lines.points, slow.points, strict=True):
            assert isinstance(line, str)
            assert parse_line(line).fields == point.fields


@fuzz(4)
@given(topic=TOPICS, payload=st.binary(max_size=256))
@example(topic=TELEMETRY, payload=b"[" * 5000)  # deeper than json's recursion limit
@example(
    topic=TELEMETRY,
    payload=b'{"seq": 1, "readings": [{"device": "d-0", "ts": 1764183600000, "values": {"level": NaN}}]}',
)
def test_arbitrary_payloads_are_decoded_or_refused(topic: str, payload: bytes) -> None:
    ingest(topic, payload)


@fuzz(4)
@given(topic=TOPICS, doc=JSON)
def test_arbitrary_json_is_decoded_or_refused(topic: str, doc: object) -> None:
    ingest(topic, json.dumps(doc).encode())


@fuzz(10)
@given(doc=catalog_telemetry() | mutated(catalog_telemetry(), values=JSON | VALUE))
@example(
    doc={"seq": 1, "readings": [{"device": "d-0", "ts": 1764183600000, "values": {"note": 'a "b"\\ c,d=e'}}]}
)
@example(
    doc={"seq": 1, "readings": [{"device": "d-0", "ts": 1764183600000, "values": {"note": "two\nlines"}}]}
)
@example(doc={"seq": 1, "readings": [{"device": "d-0", "ts": 1764183600000, "values": {"count": 2.0}}]})
def test_nearly_valid_telemetry_is_decoded_or_refused(doc: object) -> None:
    ingest(TELEMETRY, json.dumps(doc).encode())


@fuzz(4)
@given(doc=events() | mutated(events()), device=st.sampled_from(["d-0", "d-1", "nope"]))
def test_nearly_valid_events_are_decoded_or_refused(doc: Any, device: str) -> None:
    if isinstance(doc, dict) and isinstance(doc.get("events"), list):
        for event in doc["events"]:
            if isinstance(event, dict) and "device" in event:
                event["device"] = device
    ingest("yiwang/v1/c1/gw-1/event", json.dumps(doc).encode())
