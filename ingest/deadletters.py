"""The dead-letter store: every payload ingest could not accept, with its reason, within a size budget.

Nothing is dropped silently: a message is acknowledged to the broker only after it is either in the
time-series store or here — or, when a gateway exceeds its dead-letter rate (ingest/deadletter_gate.py)
or old letters leave the budget, counted as discarded in /metrics.

Every row is bounded — payload cut to ``keep_payload_bytes``, reason to ``MAX_REASON_BYTES``, topic to
``MAX_TOPIC_BYTES`` — so keeping at most ``max_bytes // row_bytes`` rows (the newest) bounds the store's
size without measuring it.

An operator may ask for letters to be replayed once their cause is fixed (a device registered since):
the API sets ``replay_requested_at``, ingest's replayer (ingest/replay.py) claims marked letters, runs
them through the writer again, deletes those stored and records the new reason on those still refused.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from common.db import create_tables

MAX_TOPIC_BYTES = 256
MAX_REASON_BYTES = 1024
KEEP_PAYLOAD_BYTES = 16 * 1024
"""Default payload kept per letter: a whole contract-sized message of ~150 readings, and the start of
anything larger (enough to see what a gateway sent)."""
MAX_BYTES = 256 * 1024**2
"""Default budget of the store: ~14,000 letters of the largest size, far more of the usual ones."""

metadata = MetaData()

dead_letters = Table(
    "ingest_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("topic", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # Set by an operator (through the API), cleared by the replayer when it takes the letter.
    Column("replay_requested_at", DateTime(timezone=True), index=True),
    Column("replayed_at", DateTime(timezone=True)),
    # REFUSED after a replay that failed again; a claim token while a replayer holds the letter.
    Column("replay_outcome", String(16)),
)
REFUSED = "refused"
CLAIM_PREFIX = "claim:"
_TRUNCATION_NOTE = re.compile(r" \[payload of \d+ bytes, first \d+ kept\]$")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A letter as kept, with its id: what the replayer takes and settles."""

    id: int
    topic: str
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Added:
    """What ``add_many`` did beyond storing: letters cut short, and old letters expired for room."""

    truncated: int = 0
    expired: int = 0


def _clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes (the cut never splits a character)."""
    if len(text) * 4 <= limit:  # cheap: no encoding for the short texts almost every letter has
        return text
    return text.encode()[:limit].decode(errors="ignore")


class DeadLetterStore:
    def __init__(
        self, db: Engine, *, max_bytes: int = MAX_BYTES, keep_payload_bytes: int = KEEP_PAYLOAD_BYTES
    ) -> None:
        if keep_payload_bytes < 1 or max_bytes < self.row_bytes_for(keep_payload_bytes):
            raise ValueError("the dead-letter budget must hold at least one letter")
        self._db = db
        self.keep_payload_bytes = keep_payload_bytes
        self.max_bytes = max_bytes
        self.max_rows = max_bytes // self.row_bytes_for(keep_payload_bytes)
        create_tables(db, metadata)

    @staticmethod
    def row_bytes_for(keep_payload_bytes: int) -> int:
        """The most one letter occupies: its payload, reason and topic at their limits."""
        return keep_payload_bytes + MAX_REASON_BYTES + MAX_TOPIC_BYTES

    def _row(self, letter: DeadLetter, now: datetime) -> dict[str, object]:
        payload, reason = letter.payload, letter.reason
        if len(payload) > self.keep_payload_bytes:
            note = f" [payload of {len(payload)} bytes, first {self.keep_payload_bytes} kept]"
            reason = _clip(reason, MAX_REASON_BYTES - len(note)) + note
            payload = payload[: self.keep_payload_bytes]
        return {
            "received_at": now,
            "topic": _clip(letter.topic, MAX_TOPIC_BYTES),
            "reason": _clip(reason, MAX_REASON_BYTES),
            "payload": payload,
        }

    def add_many(self, letters: Sequence[DeadLetter]) -> Added:
        """Store the letters (each within its bounds), then expire the oldest beyond ``max_rows``."""
        if not letters:
            return Added()
        now = datetime.now(UTC)
        rows = [self._row(d, now) for d in letters]
        with self._db.begin() as conn:
            conn.execute(insert(dead_letters), rows)
            oldest_kept = conn.execute(
                select(dead_letters.c.id)
                .order_by(dead_letters.c.id.desc())
                .offset(self.max_rows - 1)
                .limit(1)
            ).scalar_one_or_none()
            expired = 0
            if oldest_kept is not None:
                expired = conn.execute(delete(dead_letters).where(dead_letters.c.id < oldest_kept)).rowcount
        truncated = sum(len(d.payload) > self.keep_payload_bytes for d in letters)
        return Added(truncated=truncated, expired=expired)

    def size_bytes(self) -> int:
        """Bytes of payload, reason and topic kept (what the budget bounds)."""
        c = dead_letters.c
        with self._db.connect() as conn:
            total = conn.execute(
                select(func.sum(func.length(c.payload) + func.length(c.reason) + func.length(c.topic)))
            ).scalar_one()
        return int(total or 0)

    def count(self) -> int:
        with self._db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(dead_letters)).scalar_one())

    def latest(self, limit: int = 50) -> list[DeadLetter]:
        with self._db.connect() as conn:
            rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)).all()
        return [DeadLetter(r.topic, r.reason, r.payload) for r in rows]

    def claim_for_replay(self, limit: int) -> list[StoredLetter]:
        """Up to ``limit`` letters marked for replay, oldest first, taken by this caller alone.

        The claim is one UPDATE tagging the rows with a token of this call: two ingest replicas never
        replay the same letter, and a letter claimed by a process that then died is still kept (its mark
        gone, an operator marks it again).
        """
        token = CLAIM_PREFIX + secrets.token_hex(4)
        c = dead_letters.c
        with self._db.begin() as conn:
            oldest = (
                select(c.id)
                .where(c.replay_requested_at.is_not(None))
                .order_by(c.id)
                .limit(limit)
                .scalar_subquery()
            )
            conn.execute(
                update(dead_letters)
                .where(c.id.in_(oldest), c.replay_requested_at.is_not(None))
                .values(replay_requested_at=None, replay_outcome=token)
            )
        with self._db.connect() as conn:
            rows = conn.execute(
                select(c.id, c.topic, c.reason, c.payload).where(c.replay_outcome == token).order_by(c.id)
            ).all()
        return [StoredLetter(r.id, r.topic, r.reason, r.payload) for r in rows]

    def settle_replay(self, stored: Sequence[int], refused: Mapping[int, str]) -> None:
        """Delete the letters now stored; keep those refused again, with the reason of this refusal."""
        c = dead_letters.c
        now = datetime.now(UTC)
        with self._db.begin() as conn:
            if stored:
                conn.execute(delete(dead_letters).where(c.id.in_(list(stored))))
            for letter_id, reason in refused.items():
                conn.execute(
                    update(dead_letters)
                    .where(c.id == letter_id)
                    .values(reason=_clip(reason, MAX_REASON_BYTES), replayed_at=now, replay_outcome=REFUSED)
                )

    def release(self, ids: Sequence[int]) -> None:
        """Letters claimed but not replayed (ingest stopping): marked again, for the next run."""
        if ids:
            with self._db.begin() as conn:
                conn.execute(
                    update(dead_letters)
                    .where(dead_letters.c.id.in_(list(ids)))
                    .values(replay_requested_at=datetime.now(UTC), replay_outcome=None)
                )


def refusal_reason(previous: str, reason: str) -> str:
    """The reason a replayed letter is refused, keeping the note that its payload was kept only in part
    (the likely cause: a cut payload never parses)."""
    note = _TRUNCATION_NOTE.search(previous)
    if note is None or reason.endswith(note.group(0)):
        return reason
    return _clip(reason, MAX_REASON_BYTES - len(note.group(0))) + note.group(0)
