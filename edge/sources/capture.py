"""A captured wire answer → every field of a profile, with where it came from and its range check.

The integrator's first test of a new profile against a datasheet or a sniffer capture. Frames are
decoded by pymodbus (RTU with CRC, TCP with its MBAP header, or a bare PDU), fields by the agent's own
decoders (:func:`~edge.sources.decode.decode_point`, :func:`~edge.sources.parsers.parse_frame`), so what
this prints is what a gateway would publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU

from contract.errors import ContractError
from contract.profiles import ModbusPoint, ModbusProtocol, Scalar, SensorTypeProfile, SerialLineProtocol
from edge.sources.base import SourceError
from edge.sources.decode import decode_point
from edge.sources.parsers import parse_frame
from edge.sources.plan import plan_blocks

MAX_CAPTURE_BYTES = 260
"""The longest Modbus frame (RTU ADU 256, TCP ADU 260); anything longer is not one answer."""
MAX_LINE_CHARS = 65536

_FUNCTIONS = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
    11: "gateway target did not respond",
}


class CaptureError(ValueError):
    """A capture that cannot be decoded; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class FieldResult:
    """One field as decoded from a capture: its value and range check, or why there is none."""

    name: str
    value: Scalar | None
    unit: str
    valid_range: str
    in_range: bool | None
    source: str
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Capture:
    """What a capture held: a heading in words, then every field of the profile."""

    heading: str
    fields: list[FieldResult]


def parse_hex(text: str) -> bytes:
    """``01 03 04 00 D7 …`` (spaces, colons, ``0x`` allowed) as bytes; CaptureError if not hex."""
    cleaned = "".join(text.replace(":", " ").replace("0x", " ").replace("0X", " ").split())
    if len(cleaned) > 2 * MAX_CAPTURE_BYTES:
        raise CaptureError(f"{len(cleaned) // 2} bytes is longer than any Modbus frame ({MAX_CAPTURE_BYTES})")
    if not cleaned:
        raise CaptureError("the response is empty")
    bad = sorted({c for c in cleaned if c not in "0123456789abcdefABCDEF"})
    if bad:
        raise CaptureError(f"not hexadecimal: {''.join(bad)!r}")
    if len(cleaned) % 2:
        raise CaptureError(f"{len(cleaned)} hex digits: a byte is two digits, one is missing")
    return bytes.fromhex(cleaned)


def _unwrap(data: bytes) -> tuple[str, int | None, bytes]:
    """(framing in words, unit id, PDU): RTU if the CRC matches, TCP if the MBAP length does, else a PDU."""
    if len(data) >= 5 and FramerRTU.compute_CRC(data[:-2]) == int.from_bytes(data[-2:], "big"):
        return "Modbus RTU", data[0], data[1:-2]
    if len(data) >= 9 and data[2:4] == b"\0\0" and int.from_bytes(data[4:6], "big") == len(data) - 6:
        return "Modbus TCP", data[6], data[7:]
    if len(data) >= 2 and data[0] in _FUNCTIONS and data[1] == len(data) - 2:
        return "Modbus PDU", None, data
    if len(data) >= 5 and data[1] in _FUNCTIONS and data[2] == len(data) - 5:
        given, wanted = int.from_bytes(data[-2:], "big"), FramerRTU.compute_CRC(data[:-2])
        raise CaptureError(
            f"an RTU frame whose CRC is {given:04X}, not {wanted:04X}: a byte was mis-copied or lost"
        )
    if len(data) >= 3 and data[1] in _FUNCTIONS and data[2] == len(data) - 3:
        raise CaptureError("an RTU frame without its 2-byte CRC: paste the whole frame, or the PDU alone")
    if len(data) >= 3 and data[1] in _FUNCTIONS and data[2] > len(data) - 3:
        raise CaptureError(
            f"a short RTU response: its byte count says {data[2]} data bytes, {len(data) - 3} follow"
        )
    return "Modbus PDU", None, data


def _registers(pdu: bytes) -> tuple[str, list[int] | list[bool]]:
    code = pdu[0]
    if code & 0x80 and len(pdu) >= 2:
        what = _EXCEPTIONS.get(pdu[1], "unknown exception")
        raise CaptureError(f"the device refused function {code & 0x7F} with exception code {pdu[1]} ({what})")
    function = _FUNCTIONS.get(code)
    if function is None:
        raise CaptureError(f"function code {code} is not a read (1 coils, 2 discrete, 3 holding, 4 input)")
    if len(pdu) < 2 or pdu[1] != len(pdu) - 2:
        stated = pdu[1] if len(pdu) >= 2 else "no"
        raise CaptureError(
            f"short or garbled response: byte count says {stated}, {max(0, len(pdu) - 2)} data bytes follow "
            "(a whole RTU frame ends with its 2-byte CRC)"
        )
    if function in ("holding", "input") and pdu[1] % 2:
        raise CaptureError(f"{pdu[1]} data bytes is not a whole number of 16-bit registers")
    response = DecodePDU(is_server=False).decode(pdu)
    if response is None:
        raise CaptureError("pymodbus could not decode the response")
    if function in ("coil", "discrete"):
        return function, list(response.bits)
    return function, list(response.registers)


def _range(profile: SensorTypeProfile, name: str) -> str:
    spec = profile.fields[name]
    if spec.min is None and spec.max is None:
        return "no range"
    low = "…" if spec.min is None else f"{spec.min:g}"
    high = "…" if spec.max is None else f"{spec.max:g}"
    return f"{low} .. {high}"


def _checked(profile: SensorTypeProfile, name: str, value: Scalar, source: str) -> FieldResult:
    spec = profile.fields[name]
    try:
        stored = spec.coerce(name, value)
    except ContractError as err:
        return FieldResult(name, value, spec.unit or "", _range(profile, name), False, source, _reason(err))
    return FieldResult(name, stored, spec.unit or "", _range(profile, name), True, source)


def _reason(err: ContractError) -> str:
    """The coercion's complaint without its leading ``name=value``, which the table already shows."""
    text = str(err)
    return "outside the valid range" if "outside the valid range" in text else text


def _missing(profile: SensorTypeProfile, name: str, source: str, problem: str) -> FieldResult:
    spec = profile.fields[name]
    return FieldResult(name, None, spec.unit or "", _range(profile, name), None, source, problem)


def _words(point: ModbusPoint, words: list[int] | list[bool], first: int) -> str:
    if point.is_bit:
        return f"{point.function} {point.address} = {int(words[first])}"
    regs = " ".join(f"0x{int(w):04X}" for w in words[first : first + point.count])
    where = f"{point.address}" if point.count == 1 else f"{point.address}-{point.address + point.count - 1}"
    return f"{point.function} {where} = {regs} ({point.data_type})"


def decode_modbus_capture(profile: SensorTypeProfile, data: bytes, *, start: int | None = None) -> Capture:
    """Every field of ``profile`` found in one captured read response starting at register ``start``."""
    protocol = profile.protocol
    if not isinstance(protocol, ModbusProtocol):
        raise CaptureError(f"{profile.id} has no modbus protocol section")
    framing, unit, pdu = _unwrap(data)
    function, words = _registers(pdu)
    count = len(words)
    if start is None:
        try:
            start = _guess_start(protocol, function, count)
        except CaptureError as err:
            raise CaptureError(f"read as a {framing} answer to function {pdu[0]}: {err}") from err
    results: list[FieldResult] = []
    for name in profile.fields:
        point = protocol.fields.get(name)
        if point is None:
            results.append(_missing(profile, name, "not read over Modbus", "not in the protocol section"))
            continue
        first = point.address - start
        if point.function != function or first < 0 or first + point.count > count:
            results.append(
                _missing(profile, name, f"{point.function} {point.address}", "not in this response")
            )
            continue
        source = _words(point, words, first)
        try:
            value = decode_point(words[first : first + point.count], point)
        except SourceError as err:
            results.append(_missing(profile, name, source, str(err)))
            continue
        results.append(_checked(profile, name, value, source))
    who = f" from unit {unit}" if unit is not None else ""
    span = "bit(s)" if function in ("coil", "discrete") else "register(s)"
    heading = f"{profile.id} ({profile.name}): {framing} response{who}, {function} {start}+{count} {span}"
    return Capture(heading, results)


def _guess_start(protocol: ModbusProtocol, function: str, count: int) -> int:
    """The planned read this answer belongs to: the one of this table whose size matches."""
    blocks = [b for b in plan_blocks(protocol.fields, max_gap=protocol.max_gap) if b.function == function]
    if function in ("coil", "discrete"):  # bits come padded to whole bytes
        fits = [b for b in blocks if (b.count + 7) // 8 == (count + 7) // 8]
    else:
        fits = [b for b in blocks if b.count == count]
    if len(fits) == 1:
        return fits[0].start
    if not blocks:
        raise CaptureError(f"the profile reads no {function} registers; was this the right device?")
    planned = ", ".join(f"{b.start}+{b.count}" for b in blocks)
    raise CaptureError(
        f"cannot tell where a {count}-{'bit' if function in ('coil', 'discrete') else 'register'} "
        f"{function} answer starts (the agent reads {function} {planned}); say it with --start"
    )


def decode_line_capture(profile: SensorTypeProfile, line: str) -> Capture:
    """Every field of ``profile`` from one line of a serial-line device, through the agent's parser."""
    protocol = profile.protocol
    if not isinstance(protocol, SerialLineProtocol):
        raise CaptureError(f"{profile.id} has no serial_line protocol section")
    if len(line) > MAX_LINE_CHARS:
        raise CaptureError(f"a line of {len(line)} characters is longer than {MAX_LINE_CHARS}")
    frame = line.encode("ascii", errors="replace")
    if len(frame) > protocol.max_frame_bytes:
        raise CaptureError(
            f"{len(frame)} bytes is longer than the profile's max_frame_bytes ({protocol.max_frame_bytes}): "
            "the agent would drop this line"
        )
    try:
        values = parse_frame(protocol, frame)
    except SourceError as err:
        raise CaptureError(f"the agent would drop this line: {err}") from err
    results: list[FieldResult] = []
    for name in profile.fields:
        spec = protocol.fields.get(name)
        if spec is None:
            results.append(_missing(profile, name, "not read from the line", "not in the protocol section"))
            continue
        source = f"key {spec.key!r}" if spec.key is not None else f"column {spec.column}"
        results.append(_checked(profile, name, values[name], source))
    heading = f"{profile.id} ({profile.name}): {protocol.parser} line"
    return Capture(heading, results)
