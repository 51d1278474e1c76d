"""SQLAlchemy engines for SQLite (embedded default) and PostgreSQL; the declarative base of the ORM tables."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Engine, MetaData, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


class EncodedJSON(str):
    """JSON text encoded beforehand (e.g. in pieces, off a busy thread): a JSON column stores it as is."""


def _to_json(value: Any) -> str:
    return value if isinstance(value, EncodedJSON) else json.dumps(value)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, json_serializer=_to_json)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    db = create_engine(url, connect_args={"timeout": 30}, json_serializer=_to_json)

    @event.listens_for(db, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Several services share one SQLite file in the demo: WAL lets readers run beside the writer.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return db


def create_tables(
    db: Engine, metadata: MetaData, tables: Sequence[Table] | None = None, attempts: int = 5
) -> None:
    """``metadata.create_all`` that tolerates another process creating the same tables at the same time.

    create_all checks, then creates: two services starting together on a fresh database (ingest
    replicas, `yiwang up`) can both see a table missing, and the slower one then fails with "table
    already exists" (SQLite) or a duplicate in ``pg_type`` (PostgreSQL). The next check sees the table.
    """
    for attempt in range(attempts):
        try:
            metadata.create_all(db, tables=tables)
            return
        except DatabaseError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on SQLite too (which stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware UTC time")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}
