"""Modbus register words → field values: a table of data types, byte and word order, scale, offset."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from contract.profiles import MODBUS_DATA_TYPES, ModbusPoint
from edge.sources.base import SourceError


def registers_to_bytes(words: Sequence[int], *, byte_order: str, word_order: str) -> bytes:
    """Registers as the big-endian byte string of the value (ABCD), whatever order the device uses."""
    ordered = list(reversed(words)) if word_order == "little" else list(words)
    return b"".join(w.to_bytes(2, "little" if byte_order == "little" else "big") for w in ordered)


def decode_point(words: Sequence[int] | Sequence[bool], point: ModbusPoint) -> float | int | bool:
    """One field's value from exactly ``point.count`` registers (or one bit); SourceError if unusable."""
    fmt, count = MODBUS_DATA_TYPES[point.data_type]
    if len(words) != count:
        raise SourceError(f"{point.data_type} needs {count} registers, got {len(words)}")
    if point.data_type == "bool":
        # A coil/discrete bit, or a status register where any non-zero value means "on".
        return bool(words[0])
    if any(not 0 <= int(w) <= 0xFFFF for w in words):
        raise SourceError(f"{point.data_type}: registers {list(words)} are not all 16-bit words")
    raw = struct.unpack(
        ">" + fmt,
        registers_to_bytes([int(w) for w in words], byte_order=point.byte_order, word_order=point.word_order),
    )[0]
    if point.scale == 1.0 and point.offset == 0.0 and not isinstance(raw, float):
        return int(raw)
    value = float(raw) * point.scale + point.offset
    if not math.isfinite(value):
        raise SourceError(f"{point.data_type} decoded to {value} (not a number)")
    return value
