"""`yiwang dashboards …`: the Grafana dashboards, built from code (yiwang/dashboards/).

    yiwang dashboards build --out deploy/grafana/dashboards     # write them
    yiwang dashboards build --check                             # fail if the committed ones are stale

The Grafana Foundation SDK is a development dependency: the command imports it only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app

dashboards_app = typer.Typer(no_args_is_help=True, help="Grafana dashboards as code (deploy/grafana).")
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[
        Path, typer.Option("--out", help="Where the dashboards' JSON goes (Grafana's provisioning reads it).")
    ] = Path("deploy/grafana/dashboards"),
    config_dir: Annotated[
        Path, typer.Option("--config-dir", help="Where sensor-types/ lives: one telemetry row per type.")
    ] = Path("config"),
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if a file in --out differs from a fresh build."),
    ] = False,
) -> None:
    """Build every dashboard and write it as JSON (or, with --check, compare)."""
    try:
        from yiwang.dashboards import build_all
    except ImportError as err:
        typer.echo(f"yiwang dashboards: needs the dev extra (pip install 'yiwang[dev]'): {err}", err=True)
        raise typer.Exit(2) from None
    if not (config_dir / "sensor-types").is_dir():
        typer.echo(f"yiwang dashboards: no sensor-types/ in {config_dir}; pass --config-dir", err=True)
        raise typer.Exit(2)
    built = build_all(config_dir)
    if check:
        stale = [
            name
            for name, text in built.items()
            if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
        ]
        for name in stale:
            typer.echo(f"stale: {out / name} (run `yiwang dashboards build --out {out}`)", err=True)
        raise typer.Exit(1 if stale else 0)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in built.items():
        (out / name).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out / name}")
