"""Schema migrations of the relational store (Alembic), driven from code: no alembic.ini.

Revisions live in ``versions/``; ``env.py`` compares against every table in ``yiwang.schema.METADATA``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData
from sqlalchemy.engine import Connection

HERE = Path(__file__).resolve().parent
BASELINE = "0001"  # the schema of release da115ad, the last one made by create_all alone


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    # Revision files are modules of this package, so their names must be identifiers.
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    revision = ScriptDirectory.from_config(config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no revision in {HERE / 'versions'}")
    return revision


def current(db: Engine) -> str | None:
    """The revision the database is at; None when it has no ``alembic_version`` (or it is empty)."""
    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Engine, revision: str = "head") -> None:
    with db.begin() as conn:
        command.upgrade(config(conn), revision)


def downgrade(db: Engine, revision: str) -> None:
    with db.begin() as conn:
        command.downgrade(config(conn), revision)


def stamp(db: Engine, revision: str) -> None:
    """Record ``revision`` as applied without running anything."""
    with db.begin() as conn:
        command.stamp(config(conn), revision)


def revision(db: Engine, message: str, *, autogenerate: bool = True, rev_id: str | None = None) -> Path:
    """Write a new revision script; with ``autogenerate`` it holds the difference between the database
    (which must be at head) and the models."""
    with db.begin() as conn:
        script = command.revision(
            config(conn), message=message, autogenerate=autogenerate, rev_id=rev_id or _next_id()
        )
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic wrote no single revision script")
    return Path(script.path)


def _next_id() -> str:
    # Sequential ids (0001, 0002…) read better in a review than random hashes, and sort by age.
    revisions = list(ScriptDirectory.from_config(config()).walk_revisions())
    numbers = [int(r.revision) for r in revisions if r.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def differences(db: Engine, metadata: Sequence[MetaData]) -> list[Any]:
    """What autogenerate would change to make the database match ``metadata`` (empty: they match)."""
    with db.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, list(metadata)))  # type: ignore[arg-type]


def describe(diffs: Sequence[Any]) -> str:
    """One line per difference, e.g. ``add_column cases.evidence VARCHAR(64)``."""
    lines = []
    for diff in diffs:
        for op in diff if isinstance(diff, list) else [diff]:
            lines.append(_describe_one(op))
    return "\n".join(lines)


def _describe_one(op: tuple[Any, ...]) -> str:
    kind = op[0]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {op[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {op[2]}.{op[3].name} {op[3].type}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        obj = op[1]
        columns = ", ".join(c.name for c in getattr(obj, "columns", []))
        return f"{kind} {obj.table.name}.{obj.name or '(unnamed)'} ({columns})"
    if kind in ("add_fk", "remove_fk"):
        return f"{kind} {op[1].parent.name} -> {op[1].referred_table.name}"
    if kind.startswith("modify_"):
        _, _schema, table, column, _info, old, new = op
        return f"{kind} {table}.{column}: {old!r} -> {new!r}"
    return repr(op)
