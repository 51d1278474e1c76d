"""Decoding is a table: registers → expected value, for every data type, byte and word order."""

from __future__ import annotations

import pytest

from contract.profiles import ModbusPoint
from edge.sources.base import SourceError
from edge.sources.decode import decode_point


def point(data_type: str, byte_order: str = "big", word_order: str = "big", **kw: float) -> ModbusPoint:
    return ModbusPoint.model_validate(
        {"address": 0, "data_type": data_type, "byte_order": byte_order, "word_order": word_order, **kw}
    )


@pytest.mark.parametrize(
    ("words", "data_type", "byte_order", "word_order", "expected"),
    [
        ([0x0001], "uint16", "big", "big", 1),
        ([0xFFFF], "uint16", "big", "big", 65535),
        ([0xFFFF], "int16", "big", "big", -1),
        ([0xFF7F], "int16", "little", "big", 0x7FFF),
        ([0x0080], "int16", "little", "big", -32768),
        ([0x0001, 0x0002], "uint32", "big", "big", 0x00010002),
        ([0x0002, 0x0001], "uint32", "big", "little", 0x00010002),
        ([0x0100, 0x0200], "uint32", "little", "big", 0x00010002),
        ([0x0200, 0x0100], "uint32", "little", "little", 0x00010002),
        ([0xFFFF, 0xFFFE], "int32", "big", "big", -2),
        ([0xFFFE, 0xFFFF], "int32", "big", "little", -2),
        ([0x4366, 0x8000], "float32", "big", "big", 230.5),  # ABCD
        ([0x8000, 0x4366], "float32", "big", "little", 230.5),  # CDAB, word swap
        ([0x6643, 0x0080], "float32", "little", "big", 230.5),  # BADC, byte swap
        ([0x0080, 0x6643], "float32", "little", "little", 230.5),  # DCBA
        ([0xC120, 0x0000], "float32", "big", "big", -10.0),
        ([0x4093, 0x4A45, 0x8000, 0x0000], "float64", "big", "big", 1234.5678710937500),
        ([0x0000, 0x8000, 0x4A45, 0x4093], "float64", "big", "little", 1234.5678710937500),
        ([0x9340, 0x454A, 0x0080, 0x0000], "float64", "little", "big", 1234.5678710937500),
        ([0x0001], "bool", "big", "big", True),
        ([0x0000], "bool", "big", "big", False),
    ],
)
def test_registers_decode_to_the_expected_value(
    words: list[int], data_type: str, byte_order: str, word_order: str, expected: float
) -> None:
    value = decode_point(words, point(data_type, byte_order, word_order))
    assert value == pytest.approx(expected)
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("words", "data_type", "scale", "offset", "expected"),
    [
        ([215], "int16", 0.1, 0.0, 21.5),
        ([0xFFCC], "int16", 0.1, 0.0, -5.2),
        ([1000], "uint16", 0.01, -40.0, -30.0),
        ([0x4366, 0x8000], "float32", 0.001, 0.0, 0.2305),
    ],
)
def test_scale_and_offset(
    words: list[int], data_type: str, scale: float, offset: float, expected: float
) -> None:
    assert decode_point(words, point(data_type, scale=scale, offset=offset)) == pytest.approx(expected)


def test_nan_is_not_a_reading() -> None:
    with pytest.raises(SourceError, match="not a number"):
        decode_point([0x7FC0, 0x0000], point("float32", scale=2.0))


def test_wrong_register_count_is_an_error() -> None:
    with pytest.raises(SourceError, match="float32 needs 2 registers, got 1"):
        decode_point([1], point("float32"))
