"""`yiwang rules …`: alert rules applied while the platform runs (#28)."""

from __future__ import annotations

import typer

from yiwang.cli.root import app

rules_app = typer.Typer(no_args_is_help=True, help="Alert rules, applied while the platform runs.")
app.add_typer(rules_app, name="rules")
