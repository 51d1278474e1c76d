"""`yiwang gateway add`: register a gateway, create its broker account, hand over its files, reload.

One command closes the loop: the gateway is in the registry (the fleet page shows it *provisioned,
never seen* until it connects), its account is in the password file the running broker reads and the
broker has reread it, and the two files the README's install step copies to the gateway are written:
the gateway file on stdout (``> gw-03.yaml``) and ``<community>.<gateway>.password`` (mode 0600).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from yiwang.cli.root import app

if TYPE_CHECKING:
    from sqlalchemy import Engine

gateway_app = typer.Typer(no_args_is_help=True, help="Gateway provisioning (run on the server).")
app.add_typer(gateway_app, name="gateway")

SERVER_ACCOUNTS = Path("var/broker/accounts")  # `yiwang broker`'s default (<data-dir>/accounts)
DEMO_ACCOUNTS = Path("var/demo/broker")  # `yiwang up`'s


def default_accounts_dir() -> Path:
    """The server broker's accounts if it has any, else the demo's: where the running broker reads."""
    if not (SERVER_ACCOUNTS / "passwd").exists() and (DEMO_ACCOUNTS / "passwd").exists():
        return DEMO_ACCOUNTS
    return SERVER_ACCOUNTS


def _registry_engine() -> Engine:
    from common.db import create_tables, make_engine
    from common.settings import ServiceSettings
    from registry.models import TABLES
    from yiwang.schema import METADATA

    db = make_engine(ServiceSettings().database_url)
    create_tables(db, METADATA[0], tables=list(TABLES))
    return db


def register(community: str, gateway: str, name: str) -> bool:
    """The gateway in the registry; False when it was there already (registered in the console)."""
    from sqlalchemy.orm import Session

    from registry import editing
    from registry.models import RegistryGateway

    db = _registry_engine()
    try:
        with Session(db) as session, session.begin():
            if session.get(RegistryGateway, (community, gateway)) is not None:
                return False
            editing.add_gateway(session, community, {"id": gateway, "name": name})
            return True
    finally:
        db.dispose()


@gateway_app.command("add")
def gateway_add(
    community: Annotated[str, typer.Argument(help="Community id, e.g. zhuganxiang.")],
    gateway: Annotated[str, typer.Argument(help="Gateway id, e.g. gw-03.")],
    name: Annotated[str, typer.Option(help="The gateway's name as people call it.")] = "",
    accounts_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="YIWANG_BROKER_ACCOUNTS_DIR",
            help=f"Where the broker's passwd and acl files live; default {SERVER_ACCOUNTS}, "
            f"or the demo's {DEMO_ACCOUNTS} when only it has accounts.",
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option(help="Where to write <community>.<gateway>.password for the gateway.")
    ] = Path("."),
    host: Annotated[str, typer.Option(help="Broker host as the gateway reaches it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Broker port as the gateway reaches it.")] = 1883,
    tls_ca: Annotated[Path | None, typer.Option(help="CA file on the gateway (turns TLS on).")] = None,
    password_file: Annotated[Path, typer.Option(help="Where the gateway will read its password.")] = Path(
        "/etc/yiwang/mqtt.password"
    ),
    rotate: Annotated[bool, typer.Option(help="Replace the password of an existing gateway.")] = False,
    account_only: Annotated[
        bool,
        typer.Option(help="Only the broker account: the registry is on another server (register it there)."),
    ] = False,
) -> None:
    """Register a gateway, create its broker account and reload the broker; print its gateway file."""
    from broker.accounts import AccountError, AccountStore, gateway_username
    from broker.provision import BrokerAddress, add_gateway
    from broker.reload import reload_brokers
    from registry.editing import RegistryError

    accounts = accounts_dir or default_accounts_dir()
    try:
        username = gateway_username(community, gateway)
        store = AccountStore(accounts)
        if username in store.usernames() and not rotate:
            raise AccountError(
                f"account {username} exists already in {store.password_file}; rotate to replace"
            )
        registered = False if account_only else register(community, gateway, name)
        done = add_gateway(
            store,
            community,
            gateway,
            BrokerAddress(host, port, tls_ca),
            gateway_password_file=password_file,
            out_dir=out_dir,
            rotate=rotate,
        )
    except (AccountError, RegistryError) as err:
        typer.echo(f"yiwang gateway add: {err}", err=True)
        raise typer.Exit(2) from err
    reloaded = reload_brokers(store.password_file)
    typer.echo(done.config_yaml, nl=False)
    in_registry = (
        "not registered here (--account-only)"
        if account_only
        else ("registered" if registered else "already in the registry")
    )
    typer.echo(
        f"gateway add: {community}/{gateway} {in_registry}; account {username} in {store.password_file}\n"
        f"gateway add: {reloaded.describe(store.password_file)}\n"
        f"gateway add: password in {done.password_path} (mode 0600); on the gateway, with the file printed "
        f"above saved as {gateway}.yaml:\n"
        f"  sudo sh edge/install/install-edge.sh --gateway-file {gateway}.yaml "
        f"--password-file {done.password_path}",
        err=True,
    )
