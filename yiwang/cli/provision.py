"""Provisioning on the server: `yiwang broker-account service` (gateways: yiwang/cli/gateway.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app

account_app = typer.Typer(no_args_is_help=True, help="Broker accounts of the server services.")
app.add_typer(account_app, name="broker-account")


@account_app.command("service")
def broker_account_service(
    name: Annotated[str, typer.Argument(help="Service name, e.g. ingest or alerts.")],
    admin: Annotated[
        bool, typer.Option(help="May also publish desired gateway config (the operator's API).")
    ] = False,
    accounts_dir: Annotated[Path, typer.Option(help="Where the broker's passwd and acl files live.")] = Path(
        "var/broker/accounts"
    ),
    rotate: Annotated[bool, typer.Option(help="Replace the password of an existing account.")] = False,
) -> None:
    """Create a service's broker account (reads every gateway's topics); prints its password once."""
    from broker.accounts import AccountError, AccountStore

    try:
        credentials = AccountStore(accounts_dir).add_service(name, admin=admin, rotate=rotate)
    except AccountError as err:
        typer.echo(f"yiwang broker-account: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(credentials.password)
    typer.echo(
        f"broker-account: {credentials.username} created; set YIWANG_MQTT_USERNAME={credentials.username} "
        "and YIWANG_MQTT_PASSWORD to the line above; reload Mosquitto (SIGHUP) to apply",
        err=True,
    )
