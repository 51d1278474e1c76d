"""SQLAlchemy engines for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Several services share one SQLite file in the demo: WAL lets readers run beside the writer.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def create_tables(engine: Engine, metadata: MetaData, attempts: int = 5) -> None:
    """``metadata.create_all`` that tolerates another process creating the same tables at the same time.

    create_all checks, then creates: two services starting together on a fresh database (ingest
    replicas, `yiwang up`) can both see a table missing, and the slower one then fails with "table
    already exists" (SQLite) or a duplicate in ``pg_type`` (PostgreSQL). The next check sees the table.
    """
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except DatabaseError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
