"""`yiwang chaos run --json`: whole-system fault injection on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app

chaos_app = typer.Typer(no_args_is_help=True, help="Whole-system fault injection on this machine.")
app.add_typer(chaos_app, name="chaos")


@chaos_app.command("run")
def chaos_run(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="Only these (repeatable).")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each scenario, each on a fresh stack.")] = 2,
    scale: Annotated[float, typer.Option(min=0.01, help="Fault durations × this (0.1: 60 s → 6 s).")] = 1.0,
) -> None:
    """Real Mosquitto, influxd, PostgreSQL, ingest, alerts and gateways; faults injected; nothing lost."""
    import json

    from common.settings import ServiceSettings
    from yiwang.chaos.run import run as run_chaos

    try:
        result = run_chaos(ServiceSettings().config_dir, names=scenario or (), repeats=repeats, scale=scale)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2, ensure_ascii=False))
    if not all(s["ok"] for s in result["scenarios"]):
        raise typer.Exit(1)
