"""`yiwang up`: the whole platform on one box with embedded defaults (demo mode)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from yiwang.cli.root import app

if TYPE_CHECKING:
    from broker.accounts import Credentials

DEMO_DIR = Path("var/demo")


@app.command()
def up(
    embedded_broker: Annotated[
        bool, typer.Option(help="Use the embedded broker even if Mosquitto is installed.")
    ] = False,
    simulate: Annotated[bool, typer.Option(help="Run the simulated pilot community (竹竿巷).")] = True,
) -> None:
    """Start the whole platform on one box with embedded defaults (demo mode)."""
    from sqlalchemy.engine import make_url

    from api.accounts import ensure_demo_operator
    from api.settings import ApiSettings
    from broker.demo import ensure_demo_accounts
    from broker.mosquitto import MosquittoConfig, mosquitto_binary
    from common.db import make_engine
    from common.logs import setup_logging
    from edge.settings import EdgeSettings
    from yiwang.schema import ensure_schema, reset_demo_database_if_outdated
    from yiwang.supervisor import Child, Supervisor, env_with, self_command, wait_for_port

    setup_logging("up")
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    secret_file = DEMO_DIR / "session-secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        secret_file.chmod(0o600)
    env = env_with(
        {
            "YIWANG_SPOOL_DIR": os.environ.get("YIWANG_SPOOL_DIR", str(DEMO_DIR / "edge")),
            "YIWANG_INGEST_SPOOL_DIR": os.environ.get("YIWANG_INGEST_SPOOL_DIR", str(DEMO_DIR / "ingest")),
            "YIWANG_SESSION_SECRET": os.environ.get("YIWANG_SESSION_SECRET", secret_file.read_text().strip()),
        }
    )
    settings = ApiSettings()
    host = settings.mqtt_host
    for what, port in (("MQTT", settings.mqtt_port), ("HTTP", settings.http_port)):
        if wait_for_port(host, port, timeout=0.2):
            raise typer.BadParameter(f"{what} port {host}:{port} is already in use; set YIWANG_{what}_PORT")

    if make_url(settings.database_url).get_backend_name() == "sqlite" and reset_demo_database_if_outdated(
        settings.database_url, DEMO_DIR / "schema-version"
    ):
        typer.echo(
            "the demo database was made by an older version: moved aside (.old), starting fresh", err=True
        )
    ensure_schema(settings.database_url)
    db = make_engine(settings.database_url)
    credentials_path = DEMO_DIR / "credentials.json"
    ensure_demo_operator(db, credentials_path)
    db.dispose()

    # The demo broker requires credentials like a production one: one account per service, and one
    # that publishes for the simulated community's gateways (also handed to the user, for the README).
    community = EdgeSettings().community
    accounts = ensure_demo_accounts((DEMO_DIR / "broker").resolve(), [community])
    fleet = accounts.fleets[community]
    _add_to_credentials(credentials_path, {"mqtt_username": fleet.username, "mqtt_password": fleet.password})

    binary = mosquitto_binary()
    if binary and not embedded_broker:
        conf = MosquittoConfig(
            host=host,
            port=settings.mqtt_port,
            data_dir=(DEMO_DIR / "mosquitto").resolve(),
            password_file=accounts.store.password_file,
            acl_file=accounts.store.acl_file,
        ).write(DEMO_DIR / "mosquitto.conf")
        broker_child, broker_kind = (
            Child("broker", [binary, "-c", str(conf)], settings.mqtt_port),
            f"Mosquitto ({binary})",
        )
    else:
        argv = self_command("broker", "--embedded", "--accounts-dir", str(accounts.store.directory))
        broker_child = Child("broker", argv, settings.mqtt_port)
        broker_kind = "embedded amqtt" + ("" if embedded_broker else " (Mosquitto not found on PATH)")

    supervisor = Supervisor(env, host)
    supervisor.install_signal_handlers()
    code = 1
    try:
        supervisor.start(broker_child)
        for name in ("ingest", "alerts"):
            supervisor.start(Child(name, self_command(name), env=_mqtt_login(accounts.services[name])))
        supervisor.start(Child("api", self_command("api"), settings.http_port))
        if simulate:
            supervisor.start(Child("edge-sim", self_command("edge", "simulate"), env=_mqtt_login(fleet)))
        typer.echo(
            f"\nYiwang is up.\n  console   http://{settings.http_host}:{settings.http_port}/console\n"
            f"  broker    {broker_kind} on {host}:{settings.mqtt_port}\n"
            f"  login     {credentials_path} (username, password, API token, MQTT login)\n"
            f"  data      {settings.database_url}, {settings.series_url}\n  Ctrl-C stops everything.\n",
            err=True,
        )
        code = supervisor.watch()
    except RuntimeError as err:
        typer.echo(f"yiwang up: {err}", err=True)
    finally:
        supervisor.stop_all()
    raise typer.Exit(code)


def _mqtt_login(credentials: Credentials) -> dict[str, str]:
    return {"YIWANG_MQTT_USERNAME": credentials.username, "YIWANG_MQTT_PASSWORD": credentials.password}


def _add_to_credentials(path: Path, extra: dict[str, str]) -> None:
    """Merge ``extra`` into the demo's credentials file (kept 0600)."""
    import json

    from broker.accounts import write_private

    credentials = json.loads(path.read_text(encoding="utf-8")) | extra
    write_private(path, json.dumps(credentials, indent=2) + "\n")
