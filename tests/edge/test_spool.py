"""The edge spool: persistent seq, FIFO order, ack-deletes, bounds, survival across reopen."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge.spool import Spool, SpoolFullError


def _clock() -> int:
    return 1_764_183_600_000


def test_seq_strictly_increasing_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    seqs: list[int] = []
    with Spool(path, clock=_clock) as spool:
        seqs.append(spool.next_seq())
        seqs += [spool.append("telemetry", b"x").seq for _ in range(3)]
        for record in spool.pending(10):
            spool.ack(record.id)
        assert spool.depth() == 0
    # Even with the spool drained, a reopened spool must not hand out an old seq again.
    with Spool(path, clock=_clock) as spool:
        seqs.append(spool.append("telemetry", b"y").seq)
        seqs.append(spool.next_seq())
    assert seqs == sorted(set(seqs))
    assert seqs[0] >= 0


def test_payload_built_from_its_own_seq(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3") as spool:
        appended = spool.append("event", lambda seq: f'{{"seq": {seq}}}'.encode())
        (record,) = spool.pending(1)
    assert record.payload == f'{{"seq": {appended.seq}}}'.encode()
    assert (record.id, record.seq, record.kind) == (appended.id, appended.seq, "event")


def test_pending_oldest_first_and_ack_deletes(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3", clock=_clock) as spool:
        ids = [spool.append("telemetry", f"m{i}".encode()).id for i in range(5)]
        assert [r.payload for r in spool.pending(3)] == [b"m0", b"m1", b"m2"]
        assert [r.id for r in spool.pending(10, after_id=ids[2])] == ids[3:]
        assert spool.ack(ids[1]) is True
        assert spool.ack(ids[1]) is False  # a second PUBACK (resend) is harmless
        assert [r.payload for r in spool.pending(10)] == [b"m0", b"m2", b"m3", b"m4"]
        assert spool.depth() == 4
        assert spool.size_bytes() == 8
        assert spool.oldest_ts() == _clock()
        for i in ids:
            spool.ack(i)
        assert spool.depth() == 0
        assert spool.oldest_ts() is None


def test_bound_refuses_telemetry_but_keeps_a_reserve_for_events(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3", max_rows=20, reserve_fraction=0.1) as spool:
        last = [spool.append("telemetry", b"t").seq for _ in range(20)][-1]
        with pytest.raises(SpoolFullError, match="full"):
            spool.append("telemetry", b"t")
        assert spool.depth() == 20
        # An alarm still fits in the reserve (2 rows), and then that is full too.
        spool.append("event", b"e")
        spool.append("event", b"e")
        with pytest.raises(SpoolFullError):
            spool.append("event", b"e")
        assert spool.depth() == 22
        # Refused messages consumed their seq: the loss is visible downstream as a gap.
        for record in spool.pending(3):
            spool.ack(record.id)
        assert spool.append("telemetry", b"t").seq == last + 5


def test_byte_bound(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3", max_bytes=1000) as spool:
        spool.append("telemetry", b"x" * 1000)
        with pytest.raises(SpoolFullError):
            spool.append("telemetry", b"x")


def test_survives_reopen_with_pending_records(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    with Spool(path, clock=_clock) as spool:
        for i in range(4):
            spool.append("telemetry", f"m{i}".encode())
        spool.ack(spool.pending(1)[0].id)
    with Spool(path, clock=_clock) as spool:
        assert spool.depth() == 3
        assert spool.size_bytes() == 6
        assert [r.payload for r in spool.pending(10)] == [b"m1", b"m2", b"m3"]


def test_failed_build_leaves_no_row_and_no_seq(tmp_path: Path) -> None:
    def boom(seq: int) -> bytes:
        raise ValueError("cannot serialise")

    with Spool(tmp_path / "gw.sqlite3") as spool:
        before = spool.next_seq()
        with pytest.raises(ValueError, match="serialise"):
            spool.append("telemetry", boom)
        assert spool.depth() == 0
        assert spool.next_seq() == before + 1


def test_concurrent_append_and_ack(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3") as spool:
        done = threading.Event()
        acked: list[int] = []

        def acker() -> None:
            while not done.is_set() or spool.depth():
                for record in spool.pending(50):
                    if spool.ack(record.id):
                        acked.append(record.seq)

        thread = threading.Thread(target=acker)
        thread.start()
        seqs = [spool.append("telemetry", b"p").seq for _ in range(300)]
        done.set()
        thread.join(timeout=30)
        assert sorted(acked) == seqs
        assert spool.depth() == 0
        assert spool.size_bytes() == 0
