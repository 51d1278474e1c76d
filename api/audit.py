"""The audit log: every write through the API or the console, with who did it and how it ended; and
reading it back, filtered, newest first (api/routes/audit.py, the console's audit page)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    insert,
    select,
)
from starlette.concurrency import run_in_threadpool

from common.db import create_tables

metadata = MetaData()
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(512), nullable=False),
    Column("status", Integer, nullable=False),
    Column("client", String(64), nullable=False, default=""),
)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_schema(db: Engine) -> None:
    create_tables(db, metadata)


def audit_middleware(
    db: Engine,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method in WRITES:
            row = {
                "at": datetime.now(UTC),
                # Set by the authentication dependency; a refused login stays "anonymous".
                "actor": getattr(request.state, "actor", "anonymous"),
                "method": request.method,
                "path": request.url.path[:512],
                "status": response.status_code,
                "client": request.client.host if request.client else "",
            }
            await run_in_threadpool(_write, db, row)
        return response

    return record


def _write(db: Engine, row: dict[str, object]) -> None:
    with db.begin() as conn:
        conn.execute(insert(audit_log).values(**row))


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to read; every field None means no condition on it."""

    actor: str | None = None
    path_prefix: str | None = None
    method: str | None = None
    status: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def where(self) -> ColumnElement[bool]:
        c = audit_log.c
        conditions: list[ColumnElement[bool]] = []
        if self.actor:
            conditions.append(c.actor == self.actor)
        if self.path_prefix:
            conditions.append(c.path.startswith(self.path_prefix, autoescape=True))
        if self.method:
            conditions.append(c.method == self.method.upper())
        if self.status is not None:
            conditions.append(c.status == self.status)
        if self.since is not None:
            conditions.append(c.at >= _as_utc(self.since))
        if self.until is not None:
            conditions.append(c.at < _as_utc(self.until))
        return and_(True, *conditions)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    method: str
    path: str
    status: int
    client: str


def _as_utc(moment: datetime) -> datetime:
    """A moment without an offset is taken as UTC; stored times are UTC (SQLite keeps them naive)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _entry(row: Any) -> AuditEntry:
    at = row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at
    return AuditEntry(row.id, at, row.actor, row.method, row.path, row.status, row.client)


def read_audit(db: Engine, where: AuditFilter, *, limit: int, before: int | None = None) -> list[AuditEntry]:
    """Up to ``limit`` entries matching, newest first, older than entry ``before`` (the next page)."""
    query = select(audit_log).where(where.where())
    if before is not None:
        query = query.where(audit_log.c.id < before)
    with db.connect() as conn:
        rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit)).all()
    return [_entry(r) for r in rows]


def iter_audit(db: Engine, where: AuditFilter, page: int = 1000) -> Iterator[AuditEntry]:
    """Every entry matching, newest first, read a page at a time (an export never holds the log)."""
    before: int | None = None
    while True:
        entries = read_audit(db, where, limit=page, before=before)
        yield from entries
        if len(entries) < page:
            return
        before = entries[-1].id
