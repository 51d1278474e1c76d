"""Store-and-forward spool of one gateway: a bounded SQLite queue that outlives the process.

Every upstream message is appended here *before* it is published and deleted only after the broker's
PUBACK, so a broker outage or an agent restart loses nothing that was accepted (ARCHITECTURE §5).
The spool also owns the gateway's ``seq`` counter, which must never go backwards or repeat: ingest
drops a repeated seq as a duplicate.

Durability: WAL with ``synchronous=FULL``. Under ``NORMAL`` a power cut (a Pi losing power is an
ordinary field event) may roll back the last commits; that would be harmless for acks (a resend) but
not for seq allocations — a message already delivered with seq N could be followed, after the
restart, by a different message reusing N, which ingest would silently discard as a duplicate.
``FULL`` costs one fsync per append (about one a second per gateway) and per ack.

Bounds: ``max_rows`` and ``max_bytes``. When either is reached, routine telemetry is refused with
:class:`SpoolFullError`; events get a small reserve beyond the bound so an alarm still gets through a
spool full of telemetry. A refused message still consumes its seq, so the loss shows downstream as a
seq gap instead of vanishing. The full prioritisation policy (evicting or thinning old routine
telemetry in favour of new data and alarms) is issue 4.

Thread-safe: paho's network thread acks while the main thread appends; one connection, one lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- AUTOINCREMENT: ids are never reused, even after the table drains; the publisher relies on
-- "everything above the last id handed to MQTT is new".
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    payload BLOB NOT NULL
);
"""

PRIORITY_KINDS = frozenset({"event"})
"""Kinds allowed into the reserve above the bound (alarms must not queue behind routine telemetry)."""


class SpoolFullError(RuntimeError):
    """The spool reached its bound; the message was refused (its seq is consumed, so it shows as a gap)."""


class Appended(NamedTuple):
    id: int
    seq: int


class SpoolRecord(NamedTuple):
    id: int
    seq: int
    kind: str
    created_ms: int
    payload: bytes


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Spool:
    """A bounded, persistent FIFO of serialised messages with the gateway's seq counter."""

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 200_000,
        max_bytes: int = 256 * 1024 * 1024,
        reserve_fraction: float = 0.05,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("spool bounds must be positive")
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._reserve_rows = max(1, int(max_rows * reserve_fraction))
        self._reserve_bytes = max(1, int(max_bytes * reserve_fraction))
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves, so a seq bump and its row commit together.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1)")
            rows, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM spool"
            ).fetchone()
        except BaseException:
            self._db.close()
            raise
        # Counters in memory so a bound check does not scan the table on every append.
        self._rows: int = rows
        self._bytes: int = size

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take_seq(self) -> int:
        # fetchall, not fetchone: a RETURNING statement commits only once it has run to completion.
        rows = self._db.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'next_seq' RETURNING value - 1"
        ).fetchall()
        seq: int = rows[0][0]
        return seq

    def next_seq(self) -> int:
        """Allocate one seq, durably: never returned again, not even after a restart."""
        with self._lock:
            return self._take_seq()

    def append(self, kind: str, payload: bytes | Callable[[int], bytes]) -> Appended:
        """Store one message before it is published; returns its row id and seq.

        ``payload`` may be a function of the seq, so the seq inside the message and the spool row are
        allocated in the same transaction (a crash cannot leave one without the other).
        Raises :class:`SpoolFullError` when the bound is reached.
        """
        priority = kind in PRIORITY_KINDS
        row_limit = self.max_rows + (self._reserve_rows if priority else 0)
        byte_limit = self.max_bytes + (self._reserve_bytes if priority else 0)
        with self._lock:
            if self._rows >= row_limit or self._bytes >= byte_limit:
                seq = self._take_seq()
                raise SpoolFullError(
                    f"spool {self.path} is full ({self._rows} messages, {self._bytes} bytes; bound "
                    f"{self.max_rows} messages, {self.max_bytes} bytes): {kind} seq {seq} refused"
                )
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._take_seq()
                data = payload(seq) if callable(payload) else payload
                cursor = self._db.execute(
                    "INSERT INTO spool (seq, kind, created_ms, payload) VALUES (?, ?, ?, ?)",
                    (seq, kind, self._clock(), data),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._rows += 1
            self._bytes += len(data)
            row_id = cursor.lastrowid
            assert row_id is not None
            return Appended(row_id, seq)

    def pending(self, limit: int, after_id: int = 0) -> list[SpoolRecord]:
        """Up to ``limit`` unacknowledged records with an id above ``after_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, seq, kind, created_ms, payload FROM spool WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [SpoolRecord(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def ack(self, record_id: int) -> bool:
        """Delete a record once the broker acknowledged it; False if it was already gone (a resend)."""
        with self._lock:
            rows = self._db.execute(
                "DELETE FROM spool WHERE id = ? RETURNING LENGTH(payload)", (record_id,)
            ).fetchall()
            if not rows:
                return False
            self._rows -= 1
            self._bytes -= rows[0][0]
            return True

    def depth(self) -> int:
        with self._lock:
            return self._rows

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def oldest_ts(self) -> int | None:
        """Epoch ms at which the oldest pending record was appended, or None when empty."""
        with self._lock:
            row = self._db.execute("SELECT created_ms FROM spool ORDER BY id LIMIT 1").fetchone()
        return None if row is None else int(row[0])
