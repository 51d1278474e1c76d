"""`yiwang user …`: accounts for the organisation's people (#22)."""

from __future__ import annotations

import typer

from yiwang.cli.root import app

user_app = typer.Typer(no_args_is_help=True, help="Accounts for the organisation's people.")
app.add_typer(user_app, name="user")
