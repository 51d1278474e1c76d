"""A named lease in the relational store: one replica of a singleton job works, the others stand by.

The case clocks must run once, not once per replica: two replicas scanning together would both see a
stage overdue. The holder renews its lease every round; a replica that is killed stops renewing, its
lease expires after ``ttl`` and another takes it over.

A row in a table rather than a PostgreSQL advisory lock, because
- it works on SQLite too (the demo, tests), with the same two statements;
- it does not depend on one database connection staying open: an advisory lock lives in a session,
  so a pool that recycles or re-pings connections, or a network blip, drops it without the holder
  noticing, while a lease is judged by its expiry at every renewal;
- the holder and its expiry are visible to an operator (``SELECT * FROM leases``).

Taking or renewing is one ``UPDATE … WHERE name = ? AND (holder = me OR expires_at <= now)``, and an
``INSERT`` the very first time; both are atomic in either database, so two replicas can never both
succeed. Expiry is judged by the database's clock on PostgreSQL (replicas on different hosts need not
agree on the time) and by the local clock on SQLite, whose replicas all share one machine.

A lease is not a fence: a holder that stalls longer than ``ttl`` mid-round may overlap the next holder
for that round. The SLA scan locks the cases it changes (``FOR UPDATE SKIP LOCKED``) and clears a
stage's due time in the same transaction as its order, so even then no stage is supervised twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, String, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class LeaseRow(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


_leases = Base.metadata.tables[LeaseRow.__tablename__]


@dataclass(frozen=True, slots=True)
class LeaseState:
    holder: str
    expires_at: datetime


class Lease:
    """The lease ``name`` as seen by ``holder``; ``clock`` replaces the database's time (tests)."""

    def __init__(
        self,
        db: Engine,
        name: str,
        holder: str,
        ttl: timedelta,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"a lease needs a positive ttl, got {ttl}")
        self._db, self.name, self.holder, self.ttl, self._clock = db, name, holder, ttl, clock
        self._valid_until: float | None = None  # time.monotonic() when our last acquisition lapses

    def _now(self, conn: Connection) -> datetime:
        if self._clock is not None:
            return self._clock()
        if conn.dialect.name == "postgresql":
            return conn.execute(select(func.now())).scalar_one().astimezone(UTC)
        return datetime.now(UTC)

    def acquire(self) -> bool:
        """Take the lease, or renew it when it is ours; False while another holder's is still valid.

        Raises the database's error when it cannot be reached: the caller must then stop working,
        since it cannot know whether its lease still stands.
        """
        started = time.monotonic()
        with self._db.begin() as conn:
            now = self._now(conn)
            taken = conn.execute(
                update(_leases)
                .where(
                    _leases.c.name == self.name,
                    or_(_leases.c.holder == self.holder, _leases.c.expires_at <= now),
                )
                .values(holder=self.holder, expires_at=now + self.ttl)
            ).rowcount
        if not taken:
            taken = self._insert()
        # Counted from before the statement ran, so our view lapses no later than the row does.
        self._valid_until = started + self.ttl.total_seconds() if taken else None
        return bool(taken)

    def _insert(self) -> bool:
        """The first acquisition ever creates the row; of two replicas racing here one wins."""
        try:
            with self._db.begin() as conn:
                now = self._now(conn)
                conn.execute(
                    insert(_leases).values(name=self.name, holder=self.holder, expires_at=now + self.ttl)
                )
        except IntegrityError:
            return False
        return True

    @property
    def held(self) -> bool:
        """Whether our last acquisition is still valid by our own clock (no database round trip)."""
        return self._valid_until is not None and time.monotonic() < self._valid_until

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so another replica need not wait for the ttl."""
        self._valid_until = None
        with self._db.begin() as conn:
            now = self._now(conn)
            conn.execute(
                update(_leases)
                .where(_leases.c.name == self.name, _leases.c.holder == self.holder)
                .values(expires_at=now)
            )

    def current(self) -> LeaseState | None:
        """Who holds the lease and until when, whoever that is (for logs and operators)."""
        with self._db.connect() as conn:
            row = conn.execute(
                select(_leases.c.holder, _leases.c.expires_at).where(_leases.c.name == self.name)
            ).first()
        return LeaseState(row.holder, row.expires_at) if row is not None else None
