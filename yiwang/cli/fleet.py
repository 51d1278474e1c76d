"""`yiwang fleet …`: the agent version each gateway should run, rolled out canary first (#25)."""

from __future__ import annotations

import typer

from yiwang.cli.root import app

fleet_app = typer.Typer(no_args_is_help=True, help="Agent versions across gateways: canary first.")
app.add_typer(fleet_app, name="fleet")
