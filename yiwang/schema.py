"""Create every service's tables; `yiwang db init` and `yiwang up` run it before services start.

Services also create what they own when it is missing, but doing it once up front avoids two
processes racing to create the same table on first start.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable

from alerts.models import Base
from alerts.schema import create_schema as create_case_schema
from api import accounts, audit
from ingest.deadletters import metadata as dead_letter_metadata
from yiwang.common.db import make_engine
from yiwang.common.heartbeat import metadata as heartbeat_metadata

METADATA: tuple[MetaData, ...] = (
    Base.metadata,
    accounts.metadata,
    audit.metadata,
    dead_letter_metadata,
    heartbeat_metadata,
)


def fingerprint() -> str:
    """A digest of every table definition: it changes whenever the schema does."""
    ddl = sorted(str(CreateTable(t)) for m in METADATA for t in m.sorted_tables)
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()[:16]


def reset_demo_database_if_outdated(database_url: str, marker: Path) -> bool:
    """Demo mode only: a SQLite file made by an older schema is moved aside (``.old``) and started anew.

    Production databases are migrated, never reset; the demo's data is simulated and disposable.
    """
    current = fingerprint()
    path = Path(make_url(database_url).database or "")
    outdated = path.is_file() and (not marker.exists() or marker.read_text().strip() != current)
    if outdated:
        path.replace(path.with_suffix(path.suffix + ".old"))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(current + "\n")
    return outdated


def create_all(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        create_case_schema(engine)
        accounts.create_schema(engine)
        audit.create_schema(engine)
        dead_letter_metadata.create_all(engine)
        heartbeat_metadata.create_all(engine)
    finally:
        engine.dispose()
