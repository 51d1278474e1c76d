"""The outage spool: durable segments, bounded, drained oldest first, survives restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.spool import DiskSpool, SpoolFull
from series.store import Point

TS = 1764183600000


def points(n: int, start: int = 0) -> list[Point]:
    tags = {"community": "c", "gateway": "g", "device": "d"}
    return [
        Point("water.level", tags, {"level_cm": float(i), "ok": True, "note": "x"}, TS + start + i)
        for i in range(n)
    ]


def test_segments_come_back_oldest_first_with_their_points(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.append(points(3))
    spool.append(points(2, start=10))
    assert (len(spool), spool.depth_points) == (2, 5)
    oldest = spool.oldest()
    assert oldest is not None
    path, got = oldest
    assert got == points(3)
    spool.remove(path)
    oldest = spool.oldest()
    assert oldest is not None and oldest[1] == points(2, start=10)
    spool.remove(oldest[0])
    assert (spool.oldest(), spool.depth_points, spool.depth_bytes) == (None, 0, 0)


def test_encoded_lines_come_back_as_lines_beside_points(tmp_path: Path) -> None:
    """What the fast path gives InfluxDB (line-protocol text) is spooled as text, not as a Point."""
    line = f'water.level,device=d level_cm=1.5,note="a \\"b\\"" {TS}'
    spool = DiskSpool(tmp_path)
    spool.append([line, *points(1)])
    oldest = spool.oldest()
    assert oldest is not None
    assert oldest[1] == [line, *points(1)] and spool.depth_points == 2


def test_the_bound_refuses_more_and_writes_nothing(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=400)
    spool.append(points(2))
    with pytest.raises(SpoolFull, match="is full"):
        spool.append(points(20))
    assert (len(spool), spool.depth_points) == (1, 2)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_restart_finds_the_spool_and_discards_a_half_written_segment(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.append(points(4))
    (tmp_path / "000000000099-7.tmp").write_bytes(b"[[")  # killed mid-append: never acknowledged
    again = DiskSpool(tmp_path)
    assert (len(again), again.depth_points, again.depth_bytes) == (1, 4, spool.depth_bytes)
    assert not list(tmp_path.glob("*.tmp"))
    again.append(points(1, start=100))  # numbering continues after the existing segments
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == ["000000000000-4.json", "000000000001-1.json"]
