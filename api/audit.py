"""The audit log: every write through the API or the console, with who did it and how it ended."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import Request, Response
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert
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
