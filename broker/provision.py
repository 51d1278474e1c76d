"""`yiwang gateway add`: create a gateway's broker account and print its ready gateway config file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from broker.accounts import AccountStore, Credentials
from common.private_files import write_private


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls_ca: Path | None = None
    """CA file *on the gateway*; with it the gateway connects with TLS."""


@dataclass(frozen=True, slots=True)
class Provisioned:
    credentials: Credentials
    config_yaml: str
    password_path: Path
    """Where the password was written on the server (mode 0600), to be copied to the gateway."""


def password_file_name(community: str, gateway: str) -> str:
    """The name of the password file handed to ``install-edge.sh --password-file`` (the README's step)."""
    return f"{community}.{gateway}.password"


def gateway_config(
    community: str, gateway: str, username: str, broker: BrokerAddress, password_file: Path
) -> str:
    """A gateway config (edge/gateway_config.py) with broker and credentials filled in; buses to add."""
    mqtt: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "username": username,
        "password_file": str(password_file),
    }
    if broker.tls_ca is not None:
        mqtt["tls_ca"] = str(broker.tls_ca)
    config = {
        "community": community,
        "gateway": gateway,
        "config_dir": "config",
        "mqtt": mqtt,
        "spool": {"dir": "/var/lib/yiwang/edge", "max_bytes": 1024**3},
        "buses": [],
    }
    header = (
        f"# Gateway {community}/{gateway}, provisioned by `yiwang gateway add`.\n"
        f"# Copy the password to {password_file} (mode 0600) and add this gateway's buses below.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def add_gateway(
    store: AccountStore,
    community: str,
    gateway: str,
    broker: BrokerAddress,
    *,
    gateway_password_file: Path,
    out_dir: Path | None = None,
    rotate: bool = False,
) -> Provisioned:
    """Create (or with ``rotate`` replace) the account, regenerate the ACL, keep the password 0600.

    The password is written to ``out_dir`` (by default the account directory's ``credentials/``).
    """
    credentials = store.add_gateway(community, gateway, rotate=rotate)
    secret = (out_dir or store.directory / "credentials") / password_file_name(community, gateway)
    secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(secret, credentials.password + "\n")
    config = gateway_config(community, gateway, credentials.username, broker, gateway_password_file)
    return Provisioned(credentials, config, secret)
