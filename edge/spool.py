"""Store-and-forward spool of one gateway: compact, bounded, crash-safe SQLite that outlives the process.

Design. Readings and events are spooled as **chunks**: one row per source batch (one poll
cycle), holding the batch as zlib-compressed contract JSON. Contract messages are built only when they
are sent (:meth:`Spool.claim`), from many chunks at once, and that is when the message gets its
``seq``. Why:

- Space: a reading costs ~20-30 bytes compressed instead of ~100 as a row of its own, so a day offline
  at 100 sensors × 1/s (8.64 M readings) fits well under 1 GB (``yiwang bench edge``).
- Speed: an append is one INSERT and one commit per batch (50k+ readings/s), not one per reading.
- Batching: a drained backlog leaves as few large messages (up to ``max_items`` readings), not as the
  thousands of one-second messages it arrived as.
- Seq: ``seq`` belongs to the published message, which is what ingest counts gaps on. It is assigned
  in the same transaction that marks the chunks as claimed, before the message is handed to MQTT, so
  a message resent after a crash is rebuilt from the same chunks with the *same* seq. Hence every seq
  ever assigned belongs to exactly one set of chunks that is deleted only on its PUBACK: every seq
  reaches the broker (duplicates possible). Readings given up by the overflow policy never got a seq;
  they are counted by reason (:mod:`edge.spool_policy`) and reported in ``state`` and ``/metrics``.

Durability (WAL; a power cut is an ordinary field event for a Pi, so SIGKILL is not the worst case):

- A claim (seq assignment) commits with ``synchronous=FULL``: it is on disk before the message goes to
  MQTT. Otherwise a power cut could roll back a seq whose message was already delivered, and the seq
  would be reused for other readings, which ingest would discard as duplicates.
- An append is fsynced when the last fsync is at least ``sync_interval_s`` (default 1 s) old; in
  between, appends ride on the next fsync (time-based group commit). A gateway appending once a
  second per bus therefore fsyncs every append, and a burst does not pay one fsync per batch. A power
  cut can lose at most the last ``sync_interval_s`` of appended readings (as much as one poll cycle),
  never a seq and never out of order: WAL loses only a suffix of commits. ``sync_interval_s=0``
  fsyncs every append.
- An ack (delete) is not fsynced by itself: if a power cut rolls it back, the message is resent with
  its seq, a harmless duplicate.

Thread-safe: paho's network thread acks while sources append; one connection, one lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from contract.messages import MAX_PAYLOAD_BYTES, MAX_READINGS, Event, Reading
from contract.topics import TopicKind
from edge import spool_policy as policy
from edge.spool_codec import ENVELOPE, EVENT, TELEMETRY, encode, envelope

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,          -- 0 telemetry, 1 event
    created_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,             -- readings or events in the chunk
    level INTEGER NOT NULL DEFAULT 0,  -- times down-sampled
    seq INTEGER,                    -- NULL until claimed by a message
    body BLOB NOT NULL              -- zlib(JSON array of contract readings or events)
);
CREATE INDEX IF NOT EXISTS chunk_unsent ON chunk (kind, id) WHERE seq IS NULL;
CREATE INDEX IF NOT EXISTS chunk_thin ON chunk (kind, level, id) WHERE seq IS NULL;
CREATE INDEX IF NOT EXISTS chunk_claimed ON chunk (seq) WHERE seq IS NOT NULL;
"""
_KINDS = {TELEMETRY: TopicKind.TELEMETRY, EVENT: TopicKind.EVENT}
_UNSENT = "SELECT id, n, created_ms, body FROM chunk WHERE seq IS NULL AND kind = ? ORDER BY id"
_OLDEST = _UNSENT + " LIMIT ?"
_NEWEST = _UNSENT + " DESC LIMIT ?"


class SpoolFullError(RuntimeError):
    """Nothing more could be made room for; the batch was refused and counted as ``refused``."""


class Outgoing(NamedTuple):
    """One contract message built from spooled chunks, with the seq it keeps until acknowledged."""

    seq: int
    kind: TopicKind
    payload: bytes
    items: int
    backlog: bool = False
    """Telemetry older than the live window (counts against the drain rate)."""


class SpoolStats(NamedTuple):
    depth: int
    """Readings and events not yet acknowledged by the broker."""
    bytes: int
    oldest_ts: int | None
    last_seq: int
    dropped: dict[str, int]
    """Given up by the overflow policy, by reason (see :mod:`edge.spool_policy`)."""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Spool:
    """A bounded, persistent queue of readings and events with the gateway's seq counter."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float | None = 30 * 86_400,
        event_reserve: float = 0.05,
        max_items: int = 500,
        live_window_s: float = 10.0,
        sync_interval_s: float = 1.0,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        if max_bytes < 1 or not 1 <= max_items <= MAX_READINGS:
            raise ValueError(f"spool {path}: max_bytes must be positive and max_items in 1..{MAX_READINGS}")
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_ms = None if max_age_s is None else int(max_age_s * 1000)
        self._event_limit = max_bytes + max(1, int(max_bytes * event_reserve))
        self.max_items = max_items
        self._live_ms = int(live_window_s * 1000)
        self.sync_interval_s = sync_interval_s
        self._synced_at = -float("inf")  # monotonic time of the last fsynced commit
        self._full = True
        self._clock = clock
        self._lock = threading.Lock()
        self._next_expiry_ms = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves, so a seq and its claim commit together.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # switched per transaction, see _sync
            self._db.executescript(_SCHEMA)
            for key, value in [("next_seq", 1)] + [(f"dropped_{r}", 0) for r in policy.REASONS]:
                self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            # A spool written by the previous format (one serialised message per row) drains as is.
            self._legacy = bool(
                self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'spool'").fetchone()
            )
            items, size = self._totals()
        except BaseException:
            self._db.close()
            raise
        # Counters in memory so a bound check does not scan the table on every append.
        self._items: int = items
        self._bytes: int = size

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- appending -----------------------------------------------------------------------------------

    def append_readings(self, readings: Sequence[Reading]) -> int:
        """Store readings before they are published; returns how many were stored.

        Raises ``TypeError`` for anything but contract readings (nothing is stored then) and
        :class:`SpoolFullError` when the policy cannot make room (the batch is counted as refused).
        """
        return self._append(TELEMETRY, encode(Reading, readings, self.max_items))

    def append_events(self, events: Sequence[Event]) -> int:
        """Store events (kept over routine telemetry when the spool is full); see append_readings."""
        return self._append(EVENT, encode(Event, events, self.max_items))

    def _append(self, kind: int, chunks: list[tuple[int, bytes]]) -> int:
        if not chunks:
            return 0
        size = sum(len(body) for _, body in chunks)
        items = sum(n for n, _ in chunks)
        limit = self._event_limit if kind == EVENT else self.max_bytes
        with self._lock:
            now = self._clock()
            self._sync(time.monotonic() - self._synced_at >= self.sync_interval_s)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._expire(now)
                if self._bytes + size > limit and not self._make_room(self._bytes + size - limit, now):
                    policy.count(self._db, "refused", items)
                    self._db.execute("COMMIT")
                    what = "event" if kind == EVENT else "reading"
                    raise SpoolFullError(
                        f"spool {self.path} is full ({self._bytes} of {limit} bytes, nothing left to "
                        f"down-sample or evict): {items} {what}(s) refused and counted"
                    )
                self._db.executemany(
                    "INSERT INTO chunk (kind, created_ms, n, body) VALUES (?, ?, ?, ?)",
                    [(kind, now, n, body) for n, body in chunks],
                )
                self._db.execute("COMMIT")
            except SpoolFullError:
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                self._recount()
                raise
            self._items += items
            self._bytes += size
            return items

    def _expire(self, now: int) -> None:
        # At most once a minute: with an old event pinned at the head, a scan per append would be waste.
        if self.max_age_ms is None or now < self._next_expiry_ms:
            return
        self._next_expiry_ms = now + 60_000
        freed = policy.expire(self._db, now - self.max_age_ms)
        self._items -= freed.items
        self._bytes -= freed.bytes

    def _make_room(self, needed: int, now: int) -> bool:
        freed_total = 0
        while freed_total < needed:
            freed = policy.thin_or_evict(self._db, now - self._live_ms)
            if freed is None:
                return False
            freed_total += freed.bytes
            self._items -= freed.items
            self._bytes -= freed.bytes
        return True

    def _recount(self) -> None:
        # After a rollback the in-memory counters may include freed rows that came back.
        self._items, self._bytes = self._totals()

    def _totals(self) -> tuple[int, int]:
        items, size = self._db.execute(
            "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(body)), 0) FROM chunk"
        ).fetchone()
        if self._legacy:
            rows, more = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM spool"
            ).fetchone()
            items, size = items + rows, size + more
        return int(items), int(size)

    # --- draining ------------------------------------------------------------------------------------

    def claim(
        self, max_messages: int, backlog_budget: int | None = None, backlog_messages: int | None = None
    ) -> list[Outgoing]:
        """Build up to ``max_messages`` new messages and give each its seq, durably.

        Order: events first, then live telemetry (appended within the live window), then backlog
        oldest first for at most ``backlog_budget`` readings and ``backlog_messages`` messages (None:
        no limit) — so a day of backlog drains at a bounded rate while live data and alarms never
        queue behind it.
        """
        out: list[Outgoing] = []
        with self._lock:
            cutoff = self._clock() - self._live_ms
            self._sync(True)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                budget, slots = backlog_budget, backlog_messages
                for kind, newest, since in (
                    (EVENT, False, None),
                    (TELEMETRY, True, cutoff),
                    (TELEMETRY, False, None),
                ):
                    backlog = kind == TELEMETRY and since is None
                    while len(out) < max_messages and (
                        not backlog or ((budget is None or budget > 0) and (slots is None or slots > 0))
                    ):
                        message = self._claim_one(kind, newest, since, backlog)
                        if message is None:
                            break
                        out.append(message)
                        if backlog and budget is not None:
                            budget -= message.items
                        if backlog and slots is not None:
                            slots -= 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def _claim_one(self, kind: int, newest: bool, since: int | None, backlog: bool) -> Outgoing | None:
        query = _NEWEST if newest else _OLDEST
        # Iterated, not fetched: only the chunks that fit one message are read and decompressed.
        rows = self._db.execute(query, (kind, self.max_items))
        ids: list[int] = []
        parts: list[bytes] = []
        items = size = 0
        try:
            for chunk_id, n, created_ms, body in rows:
                if since is not None and created_ms < since:
                    break
                raw = zlib.decompress(body)
                if ids and (items + n > self.max_items or size + len(raw) + ENVELOPE > MAX_PAYLOAD_BYTES):
                    break
                ids.append(chunk_id)
                parts.append(raw[1:-1])  # the items inside the JSON array
                items += n
                size += len(raw)
        finally:
            rows.close()
        if not ids:
            return None
        if newest:
            ids.reverse()
            parts.reverse()
        seq = self._take_seq()
        marks = ",".join("?" * len(ids))
        self._db.execute(f"UPDATE chunk SET seq = ? WHERE id IN ({marks})", (seq, *ids))  # noqa: S608
        return Outgoing(seq, _KINDS[kind], envelope(seq, kind, parts), items, backlog)

    def unacked(self, exclude: Collection[int], limit: int) -> list[Outgoing]:
        """Messages claimed earlier (a previous run, or refused by MQTT) and not in ``exclude``.

        They are rebuilt from the same chunks with the same seq; the set is small (at most the
        previous in-flight window).
        """
        out: list[Outgoing] = []
        with self._lock:
            if self._legacy:
                for seq, kind, payload in self._db.execute(
                    "SELECT seq, kind, payload FROM spool ORDER BY id LIMIT ?", (limit + len(exclude),)
                ).fetchall():
                    if seq not in exclude and len(out) < limit:
                        out.append(Outgoing(seq, TopicKind(kind), bytes(payload), 1))
            seqs = self._db.execute(
                "SELECT DISTINCT seq FROM chunk WHERE seq IS NOT NULL ORDER BY seq LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
            for (seq,) in seqs:
                if seq in exclude or len(out) >= limit:
                    continue
                rows = self._db.execute(
                    "SELECT kind, n, body FROM chunk WHERE seq = ? ORDER BY id", (seq,)
                ).fetchall()
                parts = [zlib.decompress(body)[1:-1] for _, _, body in rows]
                kind = rows[0][0]
                out.append(Outgoing(seq, _KINDS[kind], envelope(seq, kind, parts), sum(r[1] for r in rows)))
        return out

    def ack(self, seq: int) -> bool:
        """Delete a message's chunks once the broker acknowledged it; False if already gone (a resend)."""
        with self._lock:
            self._sync(False)
            rows = self._db.execute(
                "DELETE FROM chunk WHERE seq = ? RETURNING n, LENGTH(body)", (seq,)
            ).fetchall()
            if self._legacy:
                rows += self._db.execute(
                    "DELETE FROM spool WHERE seq = ? RETURNING 1, LENGTH(payload)", (seq,)
                ).fetchall()
            if not rows:
                return False
            self._items -= sum(r[0] for r in rows)
            self._bytes -= sum(r[1] for r in rows)
            return True

    # --- seq and figures -----------------------------------------------------------------------------

    def _sync(self, full: bool) -> None:
        """Set the durability of the next commit (outside a transaction, as SQLite requires)."""
        if full:
            self._synced_at = time.monotonic()
        if full != self._full:
            self._db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    def _take_seq(self) -> int:
        # fetchall, not fetchone: a RETURNING statement commits only once it has run to completion.
        rows = self._db.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'next_seq' RETURNING value - 1"
        ).fetchall()
        seq: int = rows[0][0]
        return seq

    def next_seq(self) -> int:
        """Allocate one seq outside any message, durably (never returned again)."""
        with self._lock:
            self._sync(True)
            return self._take_seq()

    def checkpoint(self) -> None:
        """Fold the WAL into the database file and truncate it (on clean shutdown; for measuring)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def depth(self) -> int:
        with self._lock:
            return self._items

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def oldest_ts(self) -> int | None:
        """Epoch ms at which the oldest pending chunk was appended, or None when empty."""
        with self._lock:
            return self._oldest()

    def _oldest(self) -> int | None:
        row = self._db.execute("SELECT created_ms FROM chunk ORDER BY id LIMIT 1").fetchone()
        if self._legacy:
            old = self._db.execute("SELECT created_ms FROM spool ORDER BY id LIMIT 1").fetchone()
            row = old if row is None or (old is not None and old[0] < row[0]) else row
        return None if row is None else int(row[0])

    def stats(self) -> SpoolStats:
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            return SpoolStats(
                depth=self._items,
                bytes=self._bytes,
                oldest_ts=self._oldest(),
                last_seq=meta["next_seq"] - 1,
                dropped={r: meta[f"dropped_{r}"] for r in policy.REASONS},
            )
