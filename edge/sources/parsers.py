"""Frame → field values, selected by the profile's ``parser``: ``nmea``, ``csv`` or ``json``.

A frame that does not parse raises :class:`LineError` with the reason; the source counts and logs it
and goes on with the next frame.
"""

from __future__ import annotations

import json
import math

from contract.profiles import LineField, Scalar, SerialLineProtocol
from edge.sources.base import SourceError
from edge.sources.framing import nmea_checksum_ok


class LineError(SourceError):
    """One frame that is not a valid reading (bad checksum, wrong sentence, missing column)."""


class NotForUs(LineError):
    """A valid frame of a kind the profile does not read (e.g. $GPRMC when it reads GGA)."""


def _nmea_degrees(text: str, hemisphere: str, negative: str) -> float:
    # ddmm.mmmm (latitude) or dddmm.mmmm (longitude): degrees are all but the last two integer digits.
    whole, _, _ = text.partition(".")
    degrees = float(text[: len(whole) - 2]) if len(whole) > 2 else 0.0
    minutes = float(text[len(whole) - 2 :])
    value = degrees + minutes / 60.0
    if hemisphere not in ("N", "S", "E", "W"):
        raise LineError(f"hemisphere {hemisphere!r} is not N/S/E/W")
    return -value if hemisphere == negative else value


def _convert(spec: LineField, raw: object, columns: list[str], index: int) -> Scalar:
    text = str(raw).strip()
    if spec.convert == "string":
        return text
    if spec.convert == "bool":
        if text.lower() in ("1", "true", "on", "yes"):
            return True
        if text.lower() in ("0", "false", "off", "no"):
            return False
        raise LineError(f"{text!r} is not a boolean")
    if text == "":
        raise LineError("empty value")
    try:
        if spec.convert == "nmea_lat":
            number = _nmea_degrees(text, columns[index + 1] if index + 1 < len(columns) else "", "S")
        elif spec.convert == "nmea_lon":
            number = _nmea_degrees(text, columns[index + 1] if index + 1 < len(columns) else "", "W")
        else:
            number = float(text)
    except ValueError as err:
        raise LineError(f"{text!r} is not a number") from err
    value = number * spec.scale + spec.offset
    if not math.isfinite(value):  # "nan", "inf", "1e999" parse as floats; a Reading refuses them
        raise LineError(f"{text!r} is not a finite number")
    return round(value) if spec.convert == "int" else value


def _columns(protocol: SerialLineProtocol, frame: str) -> list[str]:
    if protocol.parser == "nmea":
        if protocol.checksum == "nmea" and not nmea_checksum_ok(frame):
            raise LineError("NMEA checksum mismatch")
        columns = frame[1:].rpartition("*")[0].split(",")
        # $GPGGA, $GNGGA, ...: the talker is not ours to filter, the sentence type is.
        if columns[0][2:] != protocol.sentence:
            raise NotForUs(f"sentence {columns[0]}")
        return columns
    return frame.split(protocol.separator)


def parse_frame(protocol: SerialLineProtocol, frame: bytes) -> dict[str, Scalar]:
    """Every field the profile declares, or LineError naming what is wrong."""
    try:
        text = frame.decode("ascii").strip()
    except UnicodeDecodeError as err:
        raise LineError("not ASCII (line noise?)") from err
    values: dict[str, Scalar] = {}
    if protocol.parser == "json":
        try:
            obj = json.loads(text)
        except ValueError as err:
            raise LineError(f"not JSON: {err}") from err
        except RecursionError as err:  # "[[[[..." longer than json's recursion limit
            raise LineError("not JSON: nested too deeply") from err
        if not isinstance(obj, dict):
            raise LineError("a JSON line must be an object")
        for name, spec in protocol.fields.items():
            if spec.key not in obj:
                raise LineError(f"{name}: key {spec.key!r} missing")
            values[name] = _field(name, spec, obj[spec.key], [], 0)
        return values
    columns = _columns(protocol, text)
    for name, spec in protocol.fields.items():
        assert spec.column is not None
        if spec.column >= len(columns):
            raise LineError(f"{name}: column {spec.column} missing ({len(columns)} columns)")
        values[name] = _field(name, spec, columns[spec.column], columns, spec.column)
    return values


def _field(name: str, spec: LineField, raw: object, columns: list[str], index: int) -> Scalar:
    try:
        return _convert(spec, raw, columns, index)
    except LineError as err:
        raise LineError(f"{name}: {err}") from err
