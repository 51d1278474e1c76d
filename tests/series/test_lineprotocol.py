"""Line protocol encoding: escaping and refusals, table-driven."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from series.lineprotocol import encode_point, encode_points
from series.store import PartialWrite, Point, Scalar, StoreRejected


def point(
    measurement: str = "m",
    tags: Mapping[str, str] | None = None,
    fields: Mapping[str, Scalar] | None = None,
    ts_ms: int = 1000,
) -> Point:
    return Point(measurement, {"device": "d1"} if tags is None else tags, fields or {"v": 1.5}, ts_ms)


@pytest.mark.parametrize(
    ("given", "line"),
    [
        pytest.param(point(), "m,device=d1 v=1.5 1000", id="plain"),
        pytest.param(point(tags={}), "m v=1.5 1000", id="no-tags"),
        pytest.param(point("a b,c=d"), r"a\ b\,c=d,device=d1 v=1.5 1000", id="measurement-comma-space"),
        pytest.param(
            point(tags={"k y,=": "v a,l=ue"}), r"m,k\ y\,\==v\ a\,l\=ue v=1.5 1000", id="tag-escapes"
        ),
        pytest.param(
            point(tags={"z": "1", "a": "2", "m": "3"}), "m,a=2,m=3,z=1 v=1.5 1000", id="tags-sorted"
        ),
        pytest.param(
            point(tags={"device": "d1", "grid": ""}), "m,device=d1 v=1.5 1000", id="empty-tag-omitted"
        ),
        pytest.param(point(tags={"device": "网格 1"}), r"m,device=网格\ 1 v=1.5 1000", id="chinese-tag"),
        pytest.param(point(tags={"path": r"a\b"}), r"m,path=a\b v=1.5 1000", id="lone-backslash-literal"),
        pytest.param(point(tags={"q": 'say "hi"'}), r'm,q=say\ "hi" v=1.5 1000', id="quote-in-tag"),
        pytest.param(
            point(fields={"a b,c=d": 1.5}), r"m,device=d1 a\ b\,c\=d=1.5 1000", id="field-key-escapes"
        ),
        pytest.param(point(fields={"n": 42}), "m,device=d1 n=42i 1000", id="int-suffix"),
        pytest.param(point(fields={"n": -(2**63)}), f"m,device=d1 n={-(2**63)}i 1000", id="int64-min"),
        pytest.param(point(fields={"f": 2.0}), "m,device=d1 f=2.0 1000", id="integral-float"),
        pytest.param(point(fields={"f": 1e-5}), "m,device=d1 f=1e-05 1000", id="float-exponent"),
        pytest.param(point(fields={"t": True, "f": False}), "m,device=d1 t=true,f=false 1000", id="bools"),
        pytest.param(
            point(fields={"s": 'x\\y"z'}), r'm,device=d1 s="x\\y\"z" 1000', id="string-quote-backslash"
        ),
        pytest.param(
            point(fields={"s": "a, b=c d"}), 'm,device=d1 s="a, b=c d" 1000', id="string-plain-chars"
        ),
        pytest.param(point(fields={"s": "正常"}), 'm,device=d1 s="正常" 1000', id="string-chinese"),
        pytest.param(point(fields={"s": ""}), 'm,device=d1 s="" 1000', id="string-empty"),
        pytest.param(point(ts_ms=-5), "m,device=d1 v=1.5 -5", id="negative-ts"),
    ],
)
def test_encodes(given: Point, line: str) -> None:
    assert encode_point(given) == line


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        pytest.param(point(""), "empty measurement", id="empty-measurement"),
        pytest.param(point("#m"), "comment", id="hash-measurement"),
        pytest.param(point("m\n"), "line break", id="newline-measurement"),
        pytest.param(point(fields={"s": "a\nb"}), "line break", id="newline-string"),
        pytest.param(point(fields={"s": "a\rb"}), "line break", id="cr-string"),
        pytest.param(point(tags={"device": "d\n1"}), "line break", id="newline-tag"),
        pytest.param(point(tags={"": "x"}), "empty tag key", id="empty-tag-key"),
        pytest.param(point(tags={"time": "x"}), "reserved", id="time-tag"),
        pytest.param(point(fields={"time": 1}), "reserved", id="time-field"),
        pytest.param(point(fields={"": 1}), "empty field key", id="empty-field-key"),
        pytest.param(point(tags={"device": "d\\"}), "backslash", id="trailing-backslash"),
        pytest.param(point(tags={"device": "a\\,b"}), "backslash", id="backslash-before-comma"),
        pytest.param(point(tags={"device": "a\\\\b"}), "backslash", id="double-backslash"),
        pytest.param(point(fields={"f": float("nan")}), "not finite", id="nan"),
        pytest.param(point(fields={"f": float("inf")}), "not finite", id="inf"),
        pytest.param(point(fields={"n": 2**63}), "int64", id="int-overflow"),
        pytest.param(point(fields={"x": None}), "unsupported type", id="none-field"),  # type: ignore[dict-item]
        pytest.param(Point("m", {}, {}, 1), "at least one field", id="no-fields"),
        pytest.param(point(tags={"device": 7}), "not text", id="int-tag-value"),  # type: ignore[dict-item]
        pytest.param(point(ts_ms=10**13), "range", id="ts-after-2262"),
        pytest.param(point(ts_ms=1.5), "integer milliseconds", id="float-ts"),  # type: ignore[arg-type]
    ],
)
def test_refuses(given: Point, reason: str) -> None:
    with pytest.raises(StoreRejected, match=reason):
        encode_point(given)


def test_encode_points_keeps_valid_and_reports_refused() -> None:
    lines, refused = encode_points([point(), point(fields={"f": float("nan")}), point(ts_ms=2)])
    assert lines == ["m,device=d1 v=1.5 1000", "m,device=d1 v=1.5 2"]
    assert len(refused) == 1
    assert refused[0].startswith("#1: ")


def test_partial_write_is_a_rejection_with_a_count() -> None:
    exc = PartialWrite("two refused", dropped=2)
    assert isinstance(exc, StoreRejected)
    assert exc.dropped == 2
