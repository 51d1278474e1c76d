"""`yiwang db upgrade|init|current|revision`: the relational schema and its migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app

db_app = typer.Typer(no_args_is_help=True, help="Relational database commands.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the newest schema: create it, adopt one made by create_all, or migrate."""
    from common.settings import ServiceSettings
    from yiwang.schema import ensure_schema

    typer.echo(f"db: {ensure_schema(ServiceSettings().database_url)}")


@db_app.command("init")
def db_init() -> None:
    """The same as `yiwang db upgrade` (idempotent); kept for deployments that call it."""
    db_upgrade()


@db_app.command("current")
def db_current() -> None:
    """The schema revision the database is at, and the newest this version knows."""
    from common.db import make_engine
    from common.settings import ServiceSettings
    from yiwang import migrations

    db = make_engine(ServiceSettings().database_url)
    try:
        at = migrations.current(db)
    finally:
        db.dispose()
    head = migrations.head()
    state = "up to date" if at == head else "run `yiwang db upgrade`"
    typer.echo(f"{at or 'none (not managed by migrations yet)'} (head {head}: {state})")
    if at != head:
        raise typer.Exit(1)


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision changes.")],
    empty: Annotated[bool, typer.Option(help="An empty script to fill by hand (data migrations).")] = False,
) -> None:
    """Write a new revision from the difference between the newest revision and the models (developers).

    The comparison runs against a scratch SQLite database built by replaying every revision, so it needs
    no server and sees exactly what the revisions create. Read the script before committing it.
    """
    import tempfile

    from common.db import make_engine
    from yiwang import migrations

    with tempfile.TemporaryDirectory() as scratch:
        db = make_engine(f"sqlite:///{scratch}/head.db")
        try:
            migrations.upgrade(db)
            path = migrations.revision(db, message, autogenerate=not empty)
        finally:
            db.dispose()
    typer.echo(f"wrote {path}")
