"""`yiwang edge …`: the gateway agent, its doctor, the simulated community and camera analytics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app

edge_app = typer.Typer(no_args_is_help=True, help="Edge agent commands (run on the gateway).")
app.add_typer(edge_app, name="edge")


@edge_app.command("run")
def edge_run(
    config: Annotated[Path, typer.Option("--config", help="Gateway config (config/gateways/*.yaml).")],
) -> None:
    """Read the gateway's real devices (Modbus RTU/TCP, serial lines, 5G modem) and publish them."""
    from common.runner import run_until_signalled
    from contract.errors import ContractError
    from edge.agent import run_agent
    from edge.sources.base import ConfigError

    try:
        run_until_signalled("edge", lambda stop: run_agent(config, stop))
    except (ContractError, ConfigError) as err:
        typer.echo(f"yiwang edge run: {err}", err=True)
        raise typer.Exit(2) from err


@edge_app.command("doctor")
def edge_doctor(
    config: Annotated[Path, typer.Option("--config", help="The gateway file (config/gateways/*.yaml).")],
) -> None:
    """Check ports, rights, modem, broker, TLS files, disk and clock; print what to fix."""
    from edge.agent import load_gateway_config
    from edge.doctor import diagnose, render

    checks = diagnose(load_gateway_config(config))
    typer.echo(render(checks))
    if any(c.outcome == "fail" for c in checks):
        raise typer.Exit(1)


@edge_app.command("simulate")
def edge_simulate() -> None:
    """Publish the simulated pilot community's devices (one publisher per gateway)."""
    from common.runner import run_until_signalled
    from edge.settings import EdgeSettings
    from edge.simulate import run_simulated_community

    run_until_signalled("edge", lambda stop: run_simulated_community(EdgeSettings(), stop))


@edge_app.command("camera")
def edge_camera(
    config: Annotated[Path, typer.Option("--config", help="Camera config (config/cameras/*.yaml).")],
) -> None:
    """Analyse the gateway's cameras on the box and publish anonymous events (frames never leave)."""
    from common.runner import run_until_signalled
    from edge.camera.config import CameraConfigError, load_config
    from edge.camera.runtime import run_cameras
    from edge.settings import EdgeSettings

    try:
        cameras = load_config(config)
    except CameraConfigError as err:
        typer.echo(f"yiwang edge camera: {err}", err=True)
        raise typer.Exit(2) from err
    mqtt = EdgeSettings().mqtt_options()
    run_until_signalled("edge", lambda stop: run_cameras(cameras, mqtt, stop))
