"""The edge spool: compact chunks, seq at claim time, ack-deletes, the overflow policy, reopen, legacy."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from contract.messages import Event, EventMessage, Reading, TelemetryMessage, decode_message
from contract.topics import TopicKind
from edge.spool import Spool, SpoolFullError

T0 = 1_764_183_600_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def tick(second: int, devices: int = 10) -> list[Reading]:
    """One poll cycle: a reading per device, identifiable by (device, ts)."""
    return [
        Reading(device=f"th-{d:04d}", ts=T0 + second * 1000, values={"temperature": 20.0 + d / 10})
        for d in range(devices)
    ]


def event(second: int) -> Event:
    return Event(device="sm-01", ts=T0 + second * 1000, id=uuid.uuid4(), kind="fire.smoke", phase="start")


def readings_of(spool: Spool, messages_seen: list[TelemetryMessage] | None = None) -> list[Reading]:
    """Claim and ack everything; the readings in the order they were claimed."""
    out: list[Reading] = []
    while batch := spool.claim(100):
        for message in batch:
            decoded = decode_message(message.kind, message.payload)
            assert decoded.seq == message.seq  # type: ignore[union-attr]
            if isinstance(decoded, TelemetryMessage):
                out += decoded.readings
                if messages_seen is not None:
                    messages_seen.append(decoded)
            assert spool.ack(message.seq)
    return out


def test_readings_are_batched_into_contract_messages_with_a_seq_each(tmp_path: Path) -> None:
    clock = Clock()
    with Spool(tmp_path / "gw.sqlite3", max_items=35, clock=clock) as spool:
        for s in range(10):
            assert spool.append_readings(tick(s)) == 10
        assert spool.depth() == 100
        clock.now += 60_000  # a backlog now: drained oldest first
        messages: list[TelemetryMessage] = []
        got = readings_of(spool, messages)
        assert spool.depth() == 0
        assert spool.size_bytes() == 0
        assert spool.oldest_ts() is None
    assert got == [r for s in range(10) for r in tick(s)]
    # 100 readings, at most 35 per message, whole chunks of 10: 30 + 30 + 30 + 10.
    assert [len(m.readings) for m in messages] == [30, 30, 30, 10]
    assert [m.seq for m in messages] == [1, 2, 3, 4]


def test_seq_strictly_increasing_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    seqs: list[int] = []
    with Spool(path) as spool:
        seqs.append(spool.next_seq())
        spool.append_readings(tick(0))
        seqs += [m.seq for m in spool.claim(5)]
        for seq in seqs[1:]:
            spool.ack(seq)
    # Even with the spool drained, a reopened spool must not hand out an old seq again.
    with Spool(path) as spool:
        spool.append_readings(tick(1))
        seqs += [m.seq for m in spool.claim(5)]
        seqs.append(spool.next_seq())
        assert spool.stats().last_seq == seqs[-1]
    assert seqs == sorted(set(seqs))


def test_a_claimed_message_keeps_its_seq_and_content_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    with Spool(path) as spool:
        spool.append_readings(tick(0))
        spool.append_events([event(0)])
        first = spool.claim(10)
        assert spool.unacked(exclude={m.seq for m in first}, limit=10) == []
    # The process died before the PUBACKs: the same messages come back, nothing new is claimed.
    with Spool(path) as spool:
        again = spool.unacked(exclude=set(), limit=10)
        assert again == first
        assert spool.claim(10) == []
        assert spool.ack(first[0].seq) is True
        assert spool.ack(first[0].seq) is False  # a second PUBACK (resend) is harmless
        assert spool.unacked(exclude=set(), limit=10) == first[1:]


def test_events_first_then_live_then_backlog_at_the_budget(tmp_path: Path) -> None:
    clock = Clock()
    with Spool(tmp_path / "gw.sqlite3", max_items=10, live_window_s=10, clock=clock) as spool:
        for s in range(5):  # an outage's backlog
            spool.append_readings(tick(s))
        clock.now += 60_000
        spool.append_readings(tick(60))  # live
        spool.append_events([event(61)])
        batch = spool.claim(10, backlog_budget=20)
        kinds = [(m.kind, m.backlog) for m in batch]
        assert kinds[:2] == [(TopicKind.EVENT, False), (TopicKind.TELEMETRY, False)]
        # The budget lets two backlog messages of 10 readings through; the rest waits for the next round.
        assert kinds[2:] == [(TopicKind.TELEMETRY, True)] * 2
        backlog = [decode_message(m.kind, m.payload) for m in batch[2:]]
        assert [r.ts for m in backlog for r in m.readings][::10] == [T0, T0 + 1000]  # type: ignore[union-attr]
        assert spool.depth() == 61


def test_full_spool_downsamples_before_it_evicts_and_counts_everything(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "gw.sqlite3"
    with Spool(path, clock=clock) as spool:
        spool.append_readings(tick(0))
        chunk_bytes = spool.size_bytes()
    path.unlink()
    # Room for ~40 chunks; 200 seconds of data arrive while offline.
    with Spool(path, max_bytes=40 * chunk_bytes + chunk_bytes // 2, live_window_s=5, clock=clock) as spool:
        produced = 0
        for s in range(200):
            clock.now = T0 + s * 1000
            produced += spool.append_readings(tick(s))
            assert spool.size_bytes() <= spool.max_bytes
            if s == 60:
                # The first overflow thins the backlog; nothing has been evicted yet.
                assert spool.stats().dropped["downsampled"] > 0
                assert spool.stats().dropped["evicted"] == 0
        stats = spool.stats()
        received = readings_of(spool)
    dropped = sum(stats.dropped.values())
    assert stats.dropped["refused"] == 0
    assert len(received) + dropped == produced, "every reading is either delivered or counted"
    assert len({(r.device, r.ts) for r in received}) == len(received)
    # The newest seconds survive at full resolution; the oldest survive thinned.
    seconds = sorted({(r.ts - T0) // 1000 for r in received})
    assert seconds[-5:] == [195, 196, 197, 198, 199]
    assert seconds[0] < 100


def test_events_are_kept_over_telemetry_and_refused_only_beyond_their_reserve(tmp_path: Path) -> None:
    clock = Clock()
    with Spool(
        tmp_path / "gw.sqlite3", max_bytes=4000, event_reserve=0.5, live_window_s=0, clock=clock
    ) as spool:
        for s in range(100):
            clock.now = T0 + s * 1000
            spool.append_readings(tick(s))
        events = 0
        refused: SpoolFullError | None = None
        for s in range(100, 1000):
            clock.now = T0 + s * 1000
            try:
                events += spool.append_events([event(s)])
            except SpoolFullError as err:
                refused = err
                break
        assert refused is not None and "refused and counted" in str(refused)
        stats = spool.stats()
        assert stats.dropped["refused"] == 1
        assert events > 0
        got = [decode_message(m.kind, m.payload) for m in spool.claim(1000)]
    delivered = [e for m in got if isinstance(m, EventMessage) for e in m.events]
    assert len(delivered) == events, "no accepted event was given up"
    assert not any(isinstance(m, TelemetryMessage) for m in got), "telemetry made room for the events"


def test_routine_telemetry_expires_after_max_age(tmp_path: Path) -> None:
    clock = Clock()
    with Spool(tmp_path / "gw.sqlite3", max_age_s=3600, clock=clock) as spool:
        spool.append_readings(tick(0))
        spool.append_events([event(0)])
        clock.now += 2 * 3600 * 1000
        spool.append_readings(tick(7200))
        assert spool.stats().dropped["expired"] == 10
        assert spool.depth() == 11  # the event stays


def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_stored(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3") as spool:
        spool.append_readings(tick(0))
        bad: list[object] = [*tick(1), {"device": "th-1", "ts": T0, "values": {"t": 1}}]
        with pytest.raises(TypeError, match="Reading objects, not dict"):
            spool.append_readings(bad)  # type: ignore[arg-type]
        assert spool.depth() == 10
        assert spool.append_readings([]) == 0
    with pytest.raises(ValueError, match="max_items"):
        Spool(tmp_path / "other.sqlite3", max_items=0)


def test_a_spool_of_the_previous_format_drains_with_its_own_seqs(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta VALUES ('next_seq', 8);"
        "CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, kind TEXT NOT NULL,"
        " created_ms INTEGER NOT NULL, payload BLOB NOT NULL);"
    )
    payload = TelemetryMessage(seq=7, readings=tick(0)).model_dump_json().encode()
    old.execute(
        "INSERT INTO spool (seq, kind, created_ms, payload) VALUES (7, 'telemetry', ?, ?)", (T0, payload)
    )
    old.commit()
    old.close()
    with Spool(path) as spool:
        assert spool.depth() == 1
        (legacy,) = spool.unacked(exclude=set(), limit=10)
        assert (legacy.seq, legacy.payload) == (7, payload)
        spool.append_readings(tick(1))
        (new,) = spool.claim(10)
        assert new.seq == 8  # the counter carries on
        assert spool.ack(7) and spool.ack(8)
        assert spool.depth() == 0
        assert json.loads(new.payload)["readings"][0]["ts"] == T0 + 1000


def test_concurrent_append_and_ack(tmp_path: Path) -> None:
    with Spool(tmp_path / "gw.sqlite3", max_items=20) as spool:
        done = threading.Event()
        acked: list[int] = []

        def acker() -> None:
            while not done.is_set() or spool.depth():
                for message in spool.claim(10):
                    if spool.ack(message.seq):
                        acked.append(message.items)

        thread = threading.Thread(target=acker)
        thread.start()
        for s in range(300):
            spool.append_readings(tick(s, devices=3))
        done.set()
        thread.join(timeout=30)
        assert sum(acked) == 900
        assert spool.depth() == 0
        assert spool.size_bytes() == 0


def test_compact_encoding_is_the_contract_encoding() -> None:
    # The spool serialises readings with the stdlib encoder for speed; it must stay byte-equal to pydantic.
    reading = Reading(device="th-0101", ts=T0, values={"t": 21.5, "ok": True, "n": 3, "s": 'über "x"'})
    message = TelemetryMessage(seq=5, readings=[reading, *tick(0)])
    from edge.spool_codec import _dump_readings, envelope

    parts = [_dump_readings(list(message.readings))[1:-1]]
    assert decode_message(TopicKind.TELEMETRY, envelope(5, 0, parts)) == message


def test_reconnect_backoff_is_jittered_and_capped() -> None:
    import random

    from edge.mqtt_session import Backoff

    backoff = Backoff(1, 30, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(1 <= d <= 30 for d in delays)
    assert len({round(d, 3) for d in delays}) == len(delays), "no two gateways wait in lockstep"
    assert max(delays[6:]) > 8  # it does back off
    backoff.reset()
    assert 1 <= backoff.next_delay() <= 2  # right after a success: a short first retry, still jittered
