"""A power cut for the chaos gateway: its spool as the disk held it at the last fsync.

SIGKILL keeps the page cache, so a killed process loses nothing it handed to the kernel; a power cut
loses every write since the last fsync. FUSE is present on this machine, but a LazyFS-style
filesystem that forgets unsynced writes would be a C++ build or a hand-written FUSE layer; instead
the copy-on-crash: :class:`FsyncedSpool` (the edge's real :class:`edge.spool.Spool`, hooked here,
not in production code) copies the whole database at each of its fsynced commits, and
:func:`cut_power` puts that copy in place of the live file after the kill. What a real crash keeps
is at least that copy (a later auto-checkpoint may have synced more), so the copy is the worst case a
power cut can leave.

The copy records ``through_tick``: the last gateway tick whose readings and events it holds, so the
run can tell readings the cut may legitimately take (appended after the last fsync, bounded by the
spool's ``sync_interval_s``) from readings it must never take.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.messages import Event, Reading
from edge.spool import Outgoing, Spool

_TABLE = "chaos_fsync"


def snapshot_path(spool: Path) -> Path:
    return spool.with_name(spool.name + ".fsynced")


class FsyncedSpool(Spool):
    """A spool that keeps, beside itself, a copy of what it last fsynced."""

    def __init__(
        self, path: Path, *, max_bytes: int, sync_interval_s: float, clock: Callable[[], int]
    ) -> None:
        super().__init__(path, max_bytes=max_bytes, sync_interval_s=sync_interval_s, clock=clock)
        # Reentrant: the hooks below hold the spool's lock across the parent's method, so no other
        # commit (an ack from the network thread) slips in between the fsync and the copy.
        self._lock = threading.RLock()  # type: ignore[assignment]
        self._copied_at = -float("inf")
        self.appended_through = -1
        """The last tick whose readings (appended after its events) are in the spool."""
        self._tick = -1

    def begin_tick(self, tick: int) -> None:
        """The gateway's next ``append_readings`` holds the whole of ``tick``."""
        with self._lock:
            self._tick = tick

    def append_readings(self, readings: Sequence[Reading]) -> int:
        with self._lock:
            stored = super().append_readings(readings)
            self.appended_through = self._tick
            self._copy_if_synced()
            return stored

    def append_events(self, events: Sequence[Event]) -> int:
        with self._lock:
            stored = super().append_events(events)
            self._copy_if_synced()
            return stored

    def claim(self, *args: Any, **kwargs: Any) -> list[Outgoing]:
        with self._lock:
            out = super().claim(*args, **kwargs)
            self._copy_if_synced()  # before the messages leave: a seq on the wire is on "disk"
            return out

    def next_seq(self) -> int:
        with self._lock:
            seq = super().next_seq()
            self._copy_if_synced()
            return seq

    def _copy_if_synced(self) -> None:
        if self._synced_at == self._copied_at:
            return  # the last commit was not fsynced: the "disk" still holds the previous copy
        self._copied_at = self._synced_at
        target = snapshot_path(self.path)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            self._db.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            copy.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} (through_tick INTEGER NOT NULL)")
            copy.execute(f"DELETE FROM {_TABLE}")  # noqa: S608 - a constant table name
            copy.execute(f"INSERT INTO {_TABLE} VALUES (?)", (self.appended_through,))  # noqa: S608
            copy.commit()
        finally:
            copy.close()
        os.replace(partial, target)


@dataclass(frozen=True, slots=True)
class PowerCut:
    """What one cut took: ticks appended after the last fsync, and commits (appends, acks) undone."""

    through_tick: int
    last_tick: int
    chunks_lost: int
    acks_undone: int

    @property
    def landed(self) -> bool:
        """The cut took something the live spool had: a real power cut, not a clean kill."""
        return self.chunks_lost + self.acks_undone > 0


def _chunk_ids(path: Path) -> set[int]:
    # Read-write: opening the killed process's WAL database recovers its WAL (what it committed).
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT id FROM chunk")}


def holds_unsynced(spool: Path) -> bool:
    """The running gateway's spool has a commit its last fsynced copy lacks: a cut now takes it.

    Read while the gateway runs (WAL lets a reader in); a copy not yet made counts as "no"."""
    copy = snapshot_path(spool)
    if not copy.exists():
        return False
    try:
        return bool(_chunk_ids(spool) ^ _chunk_ids(copy))
    except sqlite3.Error:  # caught mid-replace or mid-checkpoint: ask again on the next poll
        return False


def cut_power(spool: Path, last_tick: int) -> PowerCut:
    """After the gateway's SIGKILL: replace its spool by the copy of its last fsync.

    ``last_tick``: the last tick the gateway logged (appended) before it died.
    """
    copy = snapshot_path(spool)
    live = _chunk_ids(spool)  # reads the WAL too: what the killed process had committed
    kept = _chunk_ids(copy)
    with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as db:
        (through,) = db.execute(f"SELECT through_tick FROM {_TABLE}").fetchone()  # noqa: S608
    for suffix in ("-wal", "-shm"):
        spool.with_name(spool.name + suffix).unlink(missing_ok=True)
    restored = spool.with_name(spool.name + ".restoring")
    restored.write_bytes(copy.read_bytes())
    os.replace(restored, spool)
    return PowerCut(int(through), last_tick, len(live - kept), len(kept - live))


def unsynced_ticks(cuts: Collection[PowerCut]) -> set[int]:
    """Ticks a power cut may legitimately have taken: appended after the cut's last fsync."""
    return {t for c in cuts for t in range(c.through_tick + 1, c.last_tick + 1)}
