"""Fuzzing the edge agent's wire decoders: serial line frames (NMEA, CSV, JSON lines), the framer, the
modem's AT answers and Modbus register decoding and read planning.

Properties: a frame either gives values or raises LineError with a reason (never anything else, and
never a value the contract would refuse: what a parser returns goes straight into a Reading); the
framer's output does not depend on how the stream was chunked; Modbus decoding is the inverse of
encoding for every data type, byte order and word order.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from contract.catalog import load_catalog
from contract.messages import Reading
from contract.profiles import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    MODBUS_DATA_TYPES,
    ModbusPoint,
    ModbusProtocol,
    Scalar,
    SensorTypeProfile,
    SerialLineProtocol,
)
from edge.sources.at_parse import parse_cops, parse_creg, parse_csq, parse_qeng, parse_qgdcnt
from edge.sources.base import SourceError
from edge.sources.decode import decode_point
from edge.sources.framing import Framer, nmea_checksum_ok, nmea_sentence
from edge.sources.parsers import LineError, NotForUs, parse_frame
from edge.sources.plan import plan_blocks, plan_uncoalesced
from edge.sources.report import DeviceReporter
from tests.fuzz.budget import fuzz
from tests.fuzz.reasons import expect_reason
from tests.fuzz.strategies import JSON

CONFIG = Path(__file__).resolve().parents[2] / "config"
PROFILES = load_catalog(CONFIG).profiles
GPS = PROFILES["geo.gps@1"]
PM = PROFILES["air.pm@1"]
MODEM = PROFILES["gateway.modem@1"]
TS = 1764183600000

JSON_LINES = SensorTypeProfile.model_validate(
    {
        "id": "test.jsonl@1",
        "name": "JSON lines",
        "fields": {
            "t": {"type": "float"},
            "n": {"type": "int"},
            "on": {"type": "bool"},
            "s": {"type": "string"},
        },
        "protocol": {
            "kind": "serial_line",
            "parser": "json",
            "max_frame_bytes": 65536,
            "fields": {
                "t": {"key": "t", "scale": 0.1},
                "n": {"key": "n", "convert": "int"},
                "on": {"key": "on", "convert": "bool"},
                "s": {"key": "s", "convert": "string"},
            },
        },
    }
)
LINE_PROFILES = [GPS, PM, JSON_LINES]


def protocol_of(profile: SensorTypeProfile) -> SerialLineProtocol:
    assert isinstance(profile.protocol, SerialLineProtocol)
    return profile.protocol


def parse_or_reason(profile: SensorTypeProfile, frame: bytes) -> dict[str, Scalar] | None:
    """The values of a frame, checked usable; None when refused with a reason."""
    try:
        values = parse_frame(protocol_of(profile), frame)
    except LineError as err:
        expect_reason(err)
        return None
    assert set(values) == set(protocol_of(profile).fields)
    for name, value in values.items():
        assert not isinstance(value, float) or math.isfinite(value), f"{name}={value} from {frame!r}"
    # What the parser returns is published: the reporter must turn it into a Reading or drop fields,
    # never raise (an exception here would stop the serial source).
    reading = DeviceReporter("dev-1", profile).values(values, 0.0, TS)
    assert reading is None or isinstance(reading, Reading)
    return values


@fuzz(6)
@given(profile=st.sampled_from(LINE_PROFILES), frame=st.binary(max_size=128))
@example(profile=PM, frame=b"nan,inf,-infinity")  # float() reads these; a Reading refuses them
@example(profile=PM, frame=b"1e308,1e309,0")
@example(profile=JSON_LINES, frame=b"[" * 3000)  # nesting beyond json's recursion limit
@example(profile=JSON_LINES, frame=b'{"t": 1, "n": 1e999, "on": 1, "s": 2}')
@example(profile=JSON_LINES, frame=b'{"t": 1, "n": NaN, "on": 1, "s": 2}')
@example(
    profile=JSON_LINES, frame=b'{"t": 1, "n": 2, "on": 1, "s": "' + b"x" * 300 + b'"}'
)  # > a Reading's string
def test_arbitrary_frames_give_values_or_a_reason(profile: SensorTypeProfile, frame: bytes) -> None:
    parse_or_reason(profile, frame)


NUMBERISH = st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e999", "1_0", "+.5", "0x10", " 7 ", "-0"]) | (
    st.floats(allow_nan=False).map(repr)
    | st.integers().map(str)
    | st.text(alphabet="0123456789.-+eE", max_size=12)
)
COLUMN = NUMBERISH | st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=8)


@fuzz(8)
@given(columns=st.lists(COLUMN, min_size=9, max_size=16), talker=st.sampled_from(["GP", "GN", "BD", "G"]))
@example(columns=["", "", "4807.038", "X", "01131.000", "E", "1", "08", "0.9", "545.4"], talker="GP")
@example(columns=["", "", "nan", "N", "inf", "E", "nan", "08", "0.9", "545.4"], talker="GP")
def test_nearly_valid_nmea_sentences(columns: list[str], talker: str) -> None:
    sentence = nmea_sentence(",".join([f"{talker}GGA", *columns[1:]]))
    assert nmea_checksum_ok(sentence)
    parse_or_reason(GPS, sentence.encode("ascii"))


def nmea_angle(value: float, width: int) -> str:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60
    return f"{degrees:0{width}d}{minutes:07.4f}"


@fuzz(4)
@given(
    lat=st.floats(min_value=-89.9999, max_value=89.9999),
    lon=st.floats(min_value=-179.9999, max_value=179.9999),
    fix=st.integers(0, 8),
    satellites=st.integers(0, 64),
    hdop=st.floats(min_value=0, max_value=99, allow_nan=False).map(lambda x: round(x, 1)),
    altitude=st.floats(min_value=-500, max_value=9999, allow_nan=False).map(lambda x: round(x, 1)),
)
def test_valid_gga_sentences_read_back(
    lat: float, lon: float, fix: int, satellites: int, hdop: float, altitude: float
) -> None:
    body = ",".join(
        [
            "GPGGA",
            "123519",
            nmea_angle(lat, 2),
            "S" if lat < 0 else "N",
            nmea_angle(lon, 3),
            "W" if lon < 0 else "E",
            str(fix),
            f"{satellites:02d}",
            str(hdop),
            str(altitude),
            "M",
            "46.9",
            "M",
            "",
            "",
        ]
    )
    values = parse_or_reason(GPS, nmea_sentence(body).encode())
    assert values is not None
    assert math.isclose(values["latitude"], lat, abs_tol=1e-5)  # type: ignore[arg-type]
    assert math.isclose(values["longitude"], lon, abs_tol=1e-5)  # type: ignore[arg-type]
    assert values["fix_quality"] == fix
    assert values["satellites"] == satellites
    assert values["hdop"] == hdop
    assert values["altitude_m"] == altitude


@fuzz(2)
@given(frame=st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_other_nmea_sentences_are_not_for_us_or_refused(frame: str) -> None:
    sentence = nmea_sentence("GPRMC," + frame.replace("*", "").replace("\n", ""))
    try:
        parse_frame(protocol_of(GPS), sentence.encode())
    except NotForUs:
        return
    except LineError as err:
        expect_reason(err)
        return
    raise AssertionError(f"{sentence!r} read as GGA")


@fuzz(4)
@given(columns=st.lists(COLUMN, max_size=5), separator=st.sampled_from([",", ";", ", "]))
def test_nearly_valid_csv_lines(columns: list[str], separator: str) -> None:
    parse_or_reason(PM, separator.join(columns).encode("ascii"))


@fuzz(4)
@given(
    doc=st.fixed_dictionaries(
        {},
        optional={
            "t": JSON | NUMBERISH,
            "n": JSON | NUMBERISH,
            "on": JSON | st.sampled_from(["yes", "off", True, 0]),
            "s": JSON,
        },
    )
    | JSON
)
def test_json_lines_of_any_structure(doc: Any) -> None:
    parse_or_reason(JSON_LINES, json.dumps(doc).encode())


# --- framing ----------------------------------------------------------------------------------------


@fuzz(4)
@given(
    stream=st.lists(st.binary(max_size=20) | st.sampled_from([b"\r\n", b"\n", b"\r"]), max_size=20).map(
        b"".join
    ),
    cuts=st.lists(st.integers(0, 400), max_size=8),
    delimiter=st.sampled_from([b"\n", b"\r\n", b";;"]),
    max_frame=st.integers(1, 32),
)
def test_framing_does_not_depend_on_chunking(
    stream: bytes, cuts: list[int], delimiter: bytes, max_frame: int
) -> None:
    whole = Framer(delimiter=delimiter, max_frame_bytes=max_frame)
    chunked = Framer(delimiter=delimiter, max_frame_bytes=max_frame)
    expected = whole.feed(stream)
    frames: list[bytes] = []
    points = sorted({c for c in cuts if c < len(stream)} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        frames += chunked.feed(stream[start:end])
    assert frames == expected
    for frame in frames:
        assert delimiter not in frame
        assert 0 < len(frame) <= max_frame
        assert frame.strip()
    # An unfinished frame never grows memory beyond the limit (plus a partial delimiter).
    assert len(chunked._buffer) <= max(max_frame, len(stream)) + len(delimiter)


@fuzz(1)
@given(stream=st.binary(max_size=200), size=st.integers(1, 16))
def test_length_framing_cuts_exact_frames(stream: bytes, size: int) -> None:
    frames = Framer(delimiter=None, length=size).feed(stream)
    assert b"".join(frames) == stream[: len(stream) // size * size]
    assert all(len(f) == size for f in frames)


@fuzz(2)
@given(text=st.text(max_size=40))
def test_nmea_checksum_never_raises_and_matches_its_builder(text: str) -> None:
    nmea_checksum_ok(text)
    body = text.encode("ascii", errors="ignore").decode().replace("*", "")
    assert nmea_checksum_ok(nmea_sentence(body))


# --- modem AT answers -------------------------------------------------------------------------------

AT_PREFIXES = ["+CSQ: ", "+CREG: ", "+COPS: ", "+QGDCNT: ", "+QENG: ", '+QENG: "servingcell",', ""]
AT_PARTS = NUMBERISH | st.sampled_from(
    ['"servingcell"', '"NOCONN"', '"NR5G-SA"', '"LTE"', '"NR5G-NSA"', '"FDD"', "99", "-", '""']
)
AT_LINE = st.builds(
    lambda prefix, parts: prefix + ",".join(parts),
    st.sampled_from(AT_PREFIXES),
    st.lists(AT_PARTS, max_size=18),
)


@fuzz(6)
@given(lines=st.lists(AT_LINE | st.text(max_size=40), max_size=4))
@example(lines=['+QENG: "servingcell","NOCONN","NR5G-SA"'])  # a short servingcell answer
@example(lines=['+QENG: "LTE","FDD",460,00,1A2B3C,NaN,100,1,5,5,inf,-90,-10,nan'])
@example(lines=["+CSQ: nan,99"])
def test_at_answers_never_raise_and_give_usable_values(lines: list[str]) -> None:
    values: dict[str, Scalar] = {}
    for parse in (parse_csq, parse_creg, parse_cops, parse_qgdcnt, parse_qeng):
        values.update(parse(lines))
    for name, value in values.items():
        assert not isinstance(value, float) or math.isfinite(value), f"{name}={value} from {lines!r}"
    reading = DeviceReporter("modem", MODEM).values(values, 0.0, TS)
    assert reading is None or isinstance(reading, Reading)


# --- Modbus -----------------------------------------------------------------------------------------

WORD_POINTS = st.builds(
    lambda data_type, byte_order, word_order, scale, offset: ModbusPoint(
        address=0,
        data_type=data_type,
        byte_order=byte_order,
        word_order=word_order,
        scale=scale,
        offset=offset,
    ),
    st.sampled_from(sorted(set(MODBUS_DATA_TYPES) - {"bool"})),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
    st.sampled_from([1.0, 0.1, 0.001, 10.0, -1.0])
    | st.floats(allow_nan=False, allow_infinity=False).filter(bool),
    st.sampled_from([0.0, -40.0]) | st.floats(allow_nan=False, allow_infinity=False),
)


@fuzz(6)
@given(point=WORD_POINTS, words=st.lists(st.integers(0, 0xFFFF), max_size=5))
@example(
    point=ModbusPoint(address=0, data_type="float32"), words=[0x7FC0, 0x0000]
)  # a NaN float32 from the device
@example(point=ModbusPoint(address=0, data_type="float64", scale=1e300), words=[0x7FE0, 0, 0, 0])
def test_register_words_decode_or_say_why(point: ModbusPoint, words: list[int]) -> None:
    try:
        value = decode_point(words, point)
    except SourceError as err:
        expect_reason(err)
        return
    assert len(words) == point.count
    assert not isinstance(value, float) or math.isfinite(value)


@fuzz(2)
@given(
    point=WORD_POINTS | st.just(ModbusPoint(address=0, function="coil", data_type="bool")),
    words=st.lists(st.integers(-(2**20), 2**20), max_size=5),
)
@example(point=ModbusPoint(address=0, data_type="uint16"), words=[70000])
@example(point=ModbusPoint(address=0, function="coil", data_type="bool"), words=[])
def test_words_outside_a_register_are_refused(point: ModbusPoint, words: list[int]) -> None:
    try:
        decode_point(words, point)
    except SourceError as err:
        expect_reason(err)


def encode(raw: int | float, point: ModbusPoint) -> list[int]:
    """The registers a device following ``point``'s byte and word order sends for ``raw``."""
    fmt, count = MODBUS_DATA_TYPES[point.data_type]
    data = struct.pack(">" + fmt, raw)
    words = [int.from_bytes(data[i : i + 2], point.byte_order) for i in range(0, 2 * count, 2)]
    return list(reversed(words)) if point.word_order == "little" else words


RANGES = {
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "float32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "float64": st.floats(allow_nan=False, allow_infinity=False),
}


@fuzz(4)
@given(
    data=st.data(),
    data_type=st.sampled_from(sorted(RANGES)),
    orders=st.tuples(st.sampled_from(["big", "little"]), st.sampled_from(["big", "little"])),
)
def test_decoding_inverts_encoding(data: st.DataObject, data_type: str, orders: tuple[str, str]) -> None:
    point = ModbusPoint.model_validate(
        {"address": 0, "data_type": data_type, "byte_order": orders[0], "word_order": orders[1]}
    )
    raw = data.draw(RANGES[data_type])
    assert decode_point(encode(raw, point), point) == raw


POINTS = st.builds(
    lambda function, data_type, address: (function, data_type, address),
    st.sampled_from(["holding", "input", "coil", "discrete"]),
    st.sampled_from(sorted(MODBUS_DATA_TYPES)),
    st.integers(0, 65535),
)


@fuzz(4)
@given(raw=st.lists(POINTS, min_size=1, max_size=12), max_gap=st.integers(0, 125))
def test_read_plans_cover_every_field_within_protocol_limits(
    raw: list[tuple[str, str, int]], max_gap: int
) -> None:
    fields: dict[str, Any] = {}
    for index, (function, data_type, address) in enumerate(raw):
        if function in ("coil", "discrete"):
            data_type = "bool"
        fields[f"f{index}"] = {"function": function, "data_type": data_type, "address": address}
    try:
        protocol = ModbusProtocol.model_validate({"kind": "modbus", "fields": fields, "max_gap": max_gap})
    except ValueError as err:  # pydantic's ValidationError: overlaps, past register 65535
        expect_reason(err)
        return
    for blocks in (plan_blocks(protocol.fields, max_gap=max_gap), plan_uncoalesced(protocol.fields)):
        planned = [name for block in blocks for name, _ in block.points]
        assert sorted(planned) == sorted(protocol.fields)
        for block in blocks:
            limit = MAX_READ_BITS if block.function in ("coil", "discrete") else MAX_READ_REGISTERS
            assert 1 <= block.count <= limit
            assert block.start + block.count <= 65536
            for _, point in block.points:
                window = range(block.count)[block.slice_for(point)]
                assert point.function == block.function
                assert len(window) == point.count  # the point's registers lie inside the block
