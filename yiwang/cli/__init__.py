"""The one CLI, one module per command group: services, edge, provisioning, bench, silences, db, up, chaos.

Each group imports what it runs inside its commands, so a gateway with only `yiwang[edge]` installed can
run `yiwang edge` without FastAPI, SQLAlchemy or the rest of the server stack.
"""

from __future__ import annotations

import typer

from yiwang.cli import (  # noqa: F401 - registers
    bench,
    channels,
    chaos,
    dashboards,
    db,
    edge,
    fleet,
    gateway,
    provision,
    registry,
    release,
    rules,
    screenshots,
    services,
    silence,
    tokens,
    types,
    up,
    user,
)
from yiwang.cli.root import app

__all__ = ["app", "main"]


def main() -> None:
    """The `yiwang` command: settings errors from the environment end in one clear line, not a traceback."""
    from pydantic import ValidationError

    try:
        app(standalone_mode=True)
    except ValidationError as err:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        typer.echo(f"yiwang: refusing to start: {reasons}", err=True)
        raise SystemExit(2) from None
