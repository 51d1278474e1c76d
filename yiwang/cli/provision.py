"""Provisioning on the server: `yiwang gateway add` and `yiwang broker-account service`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app

gateway_app = typer.Typer(no_args_is_help=True, help="Gateway provisioning (run on the server).")
app.add_typer(gateway_app, name="gateway")
account_app = typer.Typer(no_args_is_help=True, help="Broker accounts of the server services.")
app.add_typer(account_app, name="broker-account")


@gateway_app.command("add")
def gateway_add(
    community: Annotated[str, typer.Argument(help="Community id, e.g. zhuganxiang.")],
    gateway: Annotated[str, typer.Argument(help="Gateway id, e.g. gw-03.")],
    accounts_dir: Annotated[Path, typer.Option(help="Where the broker's passwd and acl files live.")] = Path(
        "var/broker/accounts"
    ),
    host: Annotated[str, typer.Option(help="Broker host as the gateway reaches it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Broker port as the gateway reaches it.")] = 1883,
    tls_ca: Annotated[Path | None, typer.Option(help="CA file on the gateway (turns TLS on).")] = None,
    password_file: Annotated[Path, typer.Option(help="Where the gateway will read its password.")] = Path(
        "/etc/yiwang/mqtt.password"
    ),
    rotate: Annotated[bool, typer.Option(help="Replace the password of an existing gateway.")] = False,
) -> None:
    """Create a gateway's broker account and ACL entry; print its ready gateway config file."""
    from broker.accounts import AccountError, AccountStore
    from broker.provision import BrokerAddress, add_gateway

    try:
        done = add_gateway(
            AccountStore(accounts_dir),
            community,
            gateway,
            BrokerAddress(host, port, tls_ca),
            gateway_password_file=password_file,
            rotate=rotate,
        )
    except AccountError as err:
        typer.echo(f"yiwang gateway add: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(done.config_yaml, nl=False)
    typer.echo(
        f"gateway add: account {done.credentials.username}; password in {done.password_path} "
        f"(copy to {password_file} on the gateway); reload Mosquitto (SIGHUP) to apply",
        err=True,
    )


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
