"""InfluxDB line protocol: what a Point may contain, and how it is written.

Both stores validate points with :func:`check_point`, so a point the SQLite store accepts is one
InfluxDB would accept too: moving from the embedded store to InfluxDB never turns stored data into
rejected data.

Escaping (InfluxDB docs): measurement — comma, space; tag keys, tag values, field keys — comma, equals,
space; string field values — double quote, backslash. Timestamps are milliseconds (write with
``precision=ms``). Integers carry the ``i`` suffix. Tags are sorted by key (InfluxDB's advice: it saves
the server a sort) and empty tag values are omitted, as InfluxDB rejects them; an empty tag is the same
as an absent one in InfluxDB's model, and the SQLite store treats it the same way.

Refused (the point is dropped, not silently altered):

- a newline or carriage return anywhere, string field values included: it ends a line, and InfluxDB
  2.x/3.x do not accept it even quoted. We refuse rather than sanitise so stored text is always what
  the device sent;
- in names and tag values, a backslash that ends the text or precedes a backslash, comma, equals sign or
  space: InfluxDB 1.x keeps such backslashes literally while 2.x treats them as escapes, so no encoding
  reads back the same on both (a lone backslash before any other character is literal everywhere);
- a measurement starting with ``#`` (a comment line), the key ``time``, empty names, no fields,
  non-finite floats, integers outside int64, timestamps outside InfluxDB's nanosecond range.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import cast

from series.store import Line, Point, Scalar, StoreRejected

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# InfluxDB stores nanoseconds in an int64: about 1677-09-21 to 2262-04-11.
TS_MS_MIN = INT64_MIN // 1_000_000 + 1
TS_MS_MAX = INT64_MAX // 1_000_000

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_AMBIGUOUS_BACKSLASH = re.compile(r"\\([\\,= ]|$)")
_LINE_BREAK = re.compile(r"[\r\n]")


def _check_name(kind: str, text: str) -> None:
    if not text:
        raise StoreRejected(f"empty {kind}")
    if _LINE_BREAK.search(text):
        raise StoreRejected(f"{kind} {text!r} contains a line break")
    if _AMBIGUOUS_BACKSLASH.search(text):
        raise StoreRejected(
            f"{kind} {text!r} has a backslash at its end or before a backslash, comma, equals or space"
        )


def _check_key(kind: str, key: str) -> None:
    _check_name(kind, key)
    if key == "time":
        raise StoreRejected(f"{kind} 'time' is reserved by InfluxDB")


def field_value_text(key: str, value: Scalar) -> str:
    """A field value as line protocol (StoreRejected when InfluxDB could not store it)."""
    # bool before int: bool is a subclass of int in Python.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise StoreRejected(f"integer field {key!r} is outside int64: {value}")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreRejected(f"float field {key!r} is not finite: {value}")
        # repr is the shortest text that reads back as the same float; InfluxDB parses e-notation.
        return repr(value)
    if isinstance(value, str):
        if _LINE_BREAK.search(value):
            raise StoreRejected(f"string field {key!r} contains a line break")
        return f'"{value.translate(_STRING_ESCAPES)}"'
    raise StoreRejected(f"field {key!r} has unsupported type {type(value).__name__}")


def present_tags(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    """Tags sorted by key, empty values left out (they mean "no such tag")."""
    return sorted((key, value) for key, value in tags.items() if value != "")


def check_point(point: Point) -> None:
    """Raise StoreRejected when InfluxDB could not store the point exactly as given."""
    encode_point(point)


@functools.lru_cache(maxsize=65536)
def _series(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Escaped ``measurement,tag=value,...``; cached because a gateway repeats the same few series."""
    _check_name("measurement", measurement)
    if measurement.startswith("#"):
        raise StoreRejected(f"measurement {measurement!r} starts with '#' (a comment line)")
    parts = [measurement.translate(_MEASUREMENT_ESCAPES)]
    for key, value in tags:
        if not isinstance(key, str) or not isinstance(value, str):
            raise StoreRejected(f"tag {key!r}={value!r} is not text")
        if value == "":
            continue
        _check_key("tag key", key)
        _check_name("tag value", value)
        parts.append(f",{key.translate(_KEY_ESCAPES)}={value.translate(_KEY_ESCAPES)}")
    return "".join(parts)


def series_text(measurement: str, tags: Mapping[str, str]) -> str:
    """Escaped ``measurement,tag=value,...`` (StoreRejected when InfluxDB could not store it)."""
    return _series(measurement, tuple(sorted(tags.items())))


def field_key_text(key: str) -> str:
    """An escaped field key (StoreRejected when InfluxDB could not store it)."""
    return _field_key(key)


@functools.lru_cache(maxsize=4096)
def _field_key(key: str) -> str:
    _check_key("field key", key)
    return key.translate(_KEY_ESCAPES)


def encode_point(point: Point | Line) -> str:
    """One line of line protocol, or StoreRejected saying why the point cannot be written."""
    if isinstance(point, str):
        return point  # already encoded (ingest's fast path)
    if isinstance(point.ts_ms, bool) or not isinstance(point.ts_ms, int):
        raise StoreRejected(f"timestamp must be integer milliseconds, not {point.ts_ms!r}")
    if not TS_MS_MIN <= point.ts_ms <= TS_MS_MAX:
        raise StoreRejected(f"timestamp {point.ts_ms} ms is outside InfluxDB's range")
    if not point.fields:
        raise StoreRejected("a point needs at least one field")
    series = series_text(point.measurement, point.tags)
    fields = ",".join(
        f"{_field_key(key)}={field_value_text(key, value)}" for key, value in point.fields.items()
    )
    return f"{series} {fields} {point.ts_ms}"


def encode_points(points: Sequence[Point | Line]) -> tuple[list[str], list[str]]:
    """Lines of the valid points, and one reason per refused point (``"#index: why"``)."""
    if set(map(type, points)) <= {str}:  # all lines already (ingest's fast path): a C-speed check
        return cast("list[str]", list(points)), []
    lines: list[str] = []
    refused: list[str] = []
    for index, point in enumerate(points):
        try:
            lines.append(encode_point(point))
        except StoreRejected as exc:
            refused.append(f"#{index}: {exc}")
    return lines, refused
