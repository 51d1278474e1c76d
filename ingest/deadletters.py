"""The dead-letter store: every payload ingest could not accept, with its reason.

Nothing is dropped silently: a message is acknowledged to the broker only after it is either in the
time-series store or here.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    func,
    insert,
    select,
)

from common.db import create_tables

metadata = MetaData()

dead_letters = Table(
    "ingest_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("topic", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    reason: str
    payload: bytes


class DeadLetterStore:
    def __init__(self, db: Engine) -> None:
        self._db = db
        create_tables(db, metadata)

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        now = datetime.now(UTC)
        with self._db.begin() as conn:
            conn.execute(
                insert(dead_letters),
                [
                    {"received_at": now, "topic": d.topic, "reason": d.reason, "payload": d.payload}
                    for d in letters
                ],
            )

    def count(self) -> int:
        with self._db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(dead_letters)).scalar_one())

    def latest(self, limit: int = 50) -> list[DeadLetter]:
        with self._db.connect() as conn:
            rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)).all()
        return [DeadLetter(r.topic, r.reason, r.payload) for r in rows]
