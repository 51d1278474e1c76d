"""`yiwang up`: the whole platform on one box with embedded defaults (demo mode)."""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app


@app.command()
def up(
    embedded_broker: Annotated[
        bool, typer.Option(help="Use the embedded broker even if Mosquitto is installed.")
    ] = False,
    simulate: Annotated[bool, typer.Option(help="Run the simulated pilot community (竹竿巷).")] = True,
) -> None:
    """Start the whole platform on one box with embedded defaults (demo mode)."""
    from api.settings import ApiSettings
    from common.logs import setup_logging
    from yiwang import demo
    from yiwang.supervisor import Child, Supervisor, self_command

    setup_logging("up")
    env = demo.environment()
    settings = ApiSettings()
    if busy := demo.ports_in_use(settings):
        raise typer.BadParameter(busy)
    if demo.prepare_database(settings.database_url):
        typer.echo(
            "the demo database was made by an older version: moved aside (.old), starting fresh", err=True
        )
    accounts = demo.broker_accounts()
    broker, broker_kind = demo.broker_child(settings, accounts, embedded=embedded_broker)

    supervisor = Supervisor(env, settings.mqtt_host)
    supervisor.install_signal_handlers()
    code = 1
    try:
        supervisor.start(broker)
        for name in ("ingest", "alerts"):
            supervisor.start(Child(name, self_command(name), env=demo.mqtt_login(accounts.services[name])))
        supervisor.start(Child("cases", self_command("cases")))  # the database only: no broker login
        # SIGHUP to `yiwang up` reaches the API, which reads config/ into the definitions store; ingest
        # and alerts follow the store, so one reload updates every service.
        supervisor.start(Child("api", self_command("api"), settings.http_port, reloads_on_hup=True))
        if simulate:
            login = demo.simulator_login(accounts)
            supervisor.start(Child("edge-sim", self_command("edge", "simulate"), env=login))
        typer.echo(demo.banner(settings, broker_kind), err=True)
        code = supervisor.watch()
    except RuntimeError as err:
        typer.echo(f"yiwang up: {err}", err=True)
    finally:
        supervisor.stop_all()
    raise typer.Exit(code)
