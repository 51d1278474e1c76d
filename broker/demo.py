"""Broker accounts of demo mode: the demo broker requires credentials like a production one.

`yiwang up` creates them on first start and reuses them after: the password file holds only hashes,
so the passwords the demo's own processes log in with are kept beside it in ``demo-secrets.json``
(mode 0600, demo only — production passwords come from the operator's secret store).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from broker.accounts import AccountStore, Credentials, gateway_username
from common.private_files import write_private

SECRETS_FILE = "demo-secrets.json"
SERVICES = ("ingest", "alerts")


@dataclass(frozen=True, slots=True)
class DemoAccounts:
    store: AccountStore
    services: dict[str, Credentials]
    """``svc.<name>`` per server service: reads every gateway's topics, publishes nothing."""
    fleets: dict[str, Credentials]
    """``fleet.<community>``: publishes for every gateway of a community (a person with mosquitto_pub,
    the README); one connection at a time, as the broker keys a session by the account."""
    gateways: dict[tuple[str, str], Credentials]
    """``gw.<community>.<gateway>`` by (community, gateway): the simulator logs each gateway in as itself."""


def ensure_demo_accounts(
    directory: Path, communities: Iterable[str], gateways: Iterable[tuple[str, str]] = ()
) -> DemoAccounts:
    """The demo's accounts, created where missing; an account whose saved password no longer verifies
    (a hand-edited password file) is rotated, so `yiwang up` always starts with working logins.
    ``gateways`` are (community, gateway) pairs of the simulated gateways."""
    store = AccountStore(directory)
    secrets_path = directory / SECRETS_FILE
    saved: dict[str, str] = (
        json.loads(secrets_path.read_text(encoding="utf-8")) if secrets_path.exists() else {}
    )
    pairs = list(gateways)
    wanted: dict[str, partial[Credentials]] = {
        f"svc.{name}": partial(store.add_service, name) for name in SERVICES
    }
    wanted |= {f"fleet.{community}": partial(store.add_fleet, community) for community in communities}
    wanted |= {gateway_username(c, g): partial(store.add_gateway, c, g) for c, g in pairs}
    current: dict[str, Credentials] = {}
    for username, create in wanted.items():
        password = saved.get(username)
        if password is not None and store.verify(username, password):
            current[username] = Credentials(username, password)
            continue
        current[username] = create(rotate=username in store.usernames())
    passwords = {u: c.password for u, c in current.items()}
    write_private(secrets_path, json.dumps(passwords, indent=2, sort_keys=True))
    return DemoAccounts(
        store=store,
        services={name: current[f"svc.{name}"] for name in SERVICES},
        fleets={u.removeprefix("fleet."): c for u, c in current.items() if u.startswith("fleet.")},
        gateways={(c, g): current[gateway_username(c, g)] for c, g in pairs},
    )
