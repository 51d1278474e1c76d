"""Alembic environment: run by `yiwang db upgrade` and friends through `yiwang.migrations`.

The connection comes in ``config.attributes["connection"]``; there is no alembic.ini. SQLite cannot
ALTER most things, so its migrations run in batch mode (copy the table, alter, swap).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from yiwang.schema import METADATA


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # A TypeDecorator (UtcDateTime) is written as the column type it stores, so a revision script does
    # not import model code that may change or disappear after it was written.
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=list(METADATA),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through yiwang.migrations (yiwang db upgrade), not the alembic CLI")
run(connection)
