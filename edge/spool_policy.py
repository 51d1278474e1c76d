"""What a full spool gives up, in order: the documented overflow policy.

A gateway offline for days fills its spool; a bound that simply refused new data (or, like Telegraf,
dropped the oldest) would lose exactly what an operator needs. So when a chunk does not fit:

1. **Expire**: routine telemetry older than ``max_age_s`` goes first (it is stale for alerting, and
   the age bound is a promise made in the config).
2. **Down-sample**: the oldest routine telemetry at the lowest thinning level loses every second chunk
   (a chunk is one poll cycle of one source, so this halves its time resolution); what remains moves
   one level up. The whole backlog is thinned to 1/2 before any part goes to 1/4, and so on up to
   ``MAX_LEVEL`` (1/8).
3. **Evict**: only then the oldest routine telemetry is dropped outright.
4. **Refuse**: events and alarms are never thinned or evicted. They have a reserve above the bound
   (``event_reserve``); only when that is full as well is a new event refused — loudly.

Chunks already claimed by a published message (``seq`` set) are never touched: their seq is on the
wire, so deleting them could turn into an unexplained gap downstream. Every reading or event given
up is counted by reason in ``meta`` within the same transaction, so the counts survive a crash.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from edge.spool_codec import TELEMETRY

MAX_LEVEL = 3
"""Down-sampling stops at 1/2**MAX_LEVEL of the original resolution; after that, eviction."""
_BATCH = 64
"""Chunks examined per step: enough to make room for a typical append in one step."""

REASONS = ("expired", "downsampled", "evicted", "refused")


class Freed(NamedTuple):
    items: int
    bytes: int


def count(db: sqlite3.Connection, reason: str, items: int) -> None:
    """Add to a persistent drop counter (call inside the caller's transaction)."""
    if items:
        db.execute("UPDATE meta SET value = value + ? WHERE key = ?", (items, f"dropped_{reason}"))


def _delete(db: sqlite3.Connection, ids: list[int]) -> Freed:
    if not ids:
        return Freed(0, 0)
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"DELETE FROM chunk WHERE id IN ({marks}) AND seq IS NULL RETURNING n, LENGTH(body)",  # noqa: S608 - only '?' marks
        ids,
    ).fetchall()
    return Freed(sum(r[0] for r in rows), sum(r[1] for r in rows))


def expire(db: sqlite3.Connection, before_ms: int) -> Freed:
    """Drop unclaimed routine telemetry appended before ``before_ms``."""
    rows = db.execute(
        "SELECT id FROM chunk WHERE seq IS NULL AND kind = ? AND created_ms < ? ORDER BY id LIMIT 10000",
        (TELEMETRY, before_ms),
    ).fetchall()
    freed = _delete(db, [r[0] for r in rows])
    count(db, "expired", freed.items)
    return freed


def thin_or_evict(db: sqlite3.Connection, keep_after_ms: int) -> Freed | None:
    """One step of the policy (2 then 3); None when only events, claimed or live data are left.

    Chunks appended after ``keep_after_ms`` are live data and stay out of reach.
    """
    rows = db.execute(
        "SELECT id, level FROM chunk WHERE seq IS NULL AND kind = ? AND created_ms <= ? "
        "ORDER BY level, id LIMIT ?",
        (TELEMETRY, keep_after_ms, _BATCH),
    ).fetchall()
    if not rows:
        return None
    level = rows[0][1]
    ids = [r[0] for r in rows if r[1] == level]
    if level >= MAX_LEVEL:
        freed = _delete(db, ids)
        count(db, "evicted", freed.items)
        return freed
    if len(ids) == 1:
        # Nothing to pair it with at this level: promote it so the next step moves on.
        db.execute("UPDATE chunk SET level = level + 1 WHERE id = ?", (ids[0],))
        return Freed(0, 0)
    dropped, kept = ids[1::2], ids[0::2]
    freed = _delete(db, dropped)
    marks = ",".join("?" * len(kept))
    db.execute(f"UPDATE chunk SET level = level + 1 WHERE id IN ({marks})", kept)  # noqa: S608
    count(db, "downsampled", freed.items)
    return freed
