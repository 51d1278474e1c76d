"""Every service's tables, and bringing a database to the newest schema (`yiwang db upgrade`).

`yiwang db init`/`upgrade`, `yiwang up` and compose's migrate job run :func:`ensure_schema` before the
services start. Services still create the tables they own when missing (tests and ad-hoc runs rely on
it); on a database that is already at the newest revision that creates nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable

from alerts.schema import create_schema as create_alert_schema
from api import accounts, audit
from common.db import Base, create_tables, make_engine
from common.heartbeat import create_schema as create_heartbeat_schema
from common.heartbeat import metadata as heartbeat_metadata
from ingest.deadletters import metadata as dead_letter_metadata
from registry.definition_models import TABLES as DEFINITION_TABLES
from registry.models import TABLES as REGISTRY_TABLES
from registry.rollout_models import TABLES as ROLLOUT_TABLES
from yiwang import migrations

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
    """Create the missing tables from the models, outside migrations (tests, benchmarks)."""
    db = make_engine(database_url)
    try:
        _create_missing(db)
    finally:
        db.dispose()


def _create_missing(db: Engine) -> None:
    create_alert_schema(db)
    accounts.create_schema(db)
    audit.create_schema(db)
    create_tables(db, dead_letter_metadata)
    create_heartbeat_schema(db)
    create_tables(db, Base.metadata, tables=[*REGISTRY_TABLES, *ROLLOUT_TABLES, *DEFINITION_TABLES])


def table_names() -> set[str]:
    return {t.name for m in METADATA for t in m.sorted_tables}


def ensure_schema(database_url: str) -> str:
    """Bring the database to the newest revision, whatever made it; say what was done.

    - versioned (has ``alembic_version``): ``alembic upgrade head``;
    - none of our tables: create them from the models and stamp head. The models and head are the same
      schema in a release (tests/test_migrations.py checks it); one create_all is quicker than
      replaying every revision, and it is what the services themselves do on a fresh database;
    - our tables without ``alembic_version``: made by create_all, either of this version (a service
      started before the first `yiwang db upgrade`; the tables it has match the models: stamp head)
      or of an earlier release (stamp the baseline, upgrade). Tables still missing are then created.
    """
    db = make_engine(database_url)
    try:
        return _ensure(db)
    finally:
        db.dispose()


def _ensure(db: Engine) -> str:
    head = migrations.head()
    was = migrations.current(db)
    if was is not None:
        migrations.upgrade(db)
        return f"at {head}" if was == head else f"upgraded {was} -> {head}"
    ours = table_names()
    present = ours & set(inspect(db).get_table_names())
    if not present:
        _create_missing(db)
        migrations.stamp(db, head)
        return f"created the schema at {head}"
    diffs = [d for d in migrations.differences(db, METADATA) if _concerns_existing(d)]
    if not diffs:
        _create_missing(db)
        migrations.stamp(db, head)
        return f"tables made by this version's create_all: stamped {head}"
    migrations.stamp(db, migrations.BASELINE)
    migrations.upgrade(db)
    _create_missing(db)
    return (
        f"tables made by create_all of an earlier release: stamped {migrations.BASELINE}, upgraded to {head}"
    )


def _concerns_existing(diff: object) -> bool:
    """A difference inside a table we have: not a table yet to create, nor a table that is not ours."""
    first = diff[0] if isinstance(diff, list) else diff
    return not (isinstance(first, tuple) and first[0] in ("add_table", "remove_table"))
