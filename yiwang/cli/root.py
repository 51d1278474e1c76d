"""The `yiwang` Typer application that every command group registers on."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Yiwang (一网) smart-community platform.")
