"""What `yiwang up` prepares before it starts the platform (demo mode): everything under ``var/demo``.

A session secret that survives restarts, the services' environment, the demo database at the newest
schema with its operator account, broker accounts (the demo broker requires logins like a production
one) and the broker itself. Imported by the `up` command only: it needs the whole server stack.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from api.accounts import ensure_demo_operator
from api.demo_accounts import ensure_demo_logins
from api.settings import ApiSettings
from broker.accounts import Credentials
from broker.demo import DemoAccounts, ensure_demo_accounts
from broker.mosquitto import MosquittoConfig, mosquitto_binary
from common.db import make_engine
from common.private_files import write_private
from common.redact import redact
from contract.catalog import load_catalog
from edge.settings import EdgeSettings
from yiwang.schema import ensure_schema, reset_demo_database_if_outdated
from yiwang.supervisor import Child, env_with, self_command, wait_for_port

DEMO_DIR = Path("var/demo")
CREDENTIALS = DEMO_DIR / "credentials.json"
SIMULATOR_ACCOUNTS = DEMO_DIR / "simulator-accounts.json"


def environment() -> dict[str, str]:
    """The services' environment: ours, plus demo spool directories and a stable session secret."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    return env_with(
        {
            "YIWANG_SPOOL_DIR": os.environ.get("YIWANG_SPOOL_DIR", str(DEMO_DIR / "edge")),
            "YIWANG_INGEST_SPOOL_DIR": os.environ.get("YIWANG_INGEST_SPOOL_DIR", str(DEMO_DIR / "ingest")),
            "YIWANG_SESSION_SECRET": os.environ.get("YIWANG_SESSION_SECRET") or _session_secret(),
        }
    )


def _session_secret() -> str:
    """Kept in a file, so console sessions survive a restart of the demo."""
    path = DEMO_DIR / "session-secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()


def ports_in_use(settings: ApiSettings) -> str | None:
    """Why the demo cannot start on this box's ports, or None when both are free."""
    host = settings.mqtt_host
    for what, port in (("MQTT", settings.mqtt_port), ("HTTP", settings.http_port)):
        if wait_for_port(host, port, timeout=0.2):
            return f"{what} port {host}:{port} is already in use; set YIWANG_{what}_PORT"
    return None


def prepare_database(database_url: str) -> bool:
    """The database at the newest schema, with the demo operator; True when an outdated demo SQLite
    file was moved aside (``.old``) to start afresh: demo data is simulated and disposable."""
    outdated = make_url(database_url).get_backend_name() == "sqlite" and reset_demo_database_if_outdated(
        database_url, DEMO_DIR / "schema-version"
    )
    ensure_schema(database_url)
    db = make_engine(database_url)
    try:
        ensure_demo_operator(db, CREDENTIALS)
        ensure_demo_logins(db, ApiSettings().config_dir, CREDENTIALS)  # one account per role
    finally:
        db.dispose()
    return outdated


def broker_accounts() -> DemoAccounts:
    """One account per service that reads the stream, one per simulated gateway, and one publishing
    for the whole simulated community, whose login is added to the credentials handed to the user (the
    README uses it). The broker keys a session by the account, so no two of these may share one."""
    edge = EdgeSettings()
    community = edge.community
    gateways = [(community, gw.id) for gw in load_catalog(edge.config_dir).communities[community].gateways]
    accounts = ensure_demo_accounts((DEMO_DIR / "broker").resolve(), [community], gateways)
    fleet = accounts.fleets[community]
    credentials = json.loads(CREDENTIALS.read_text(encoding="utf-8"))
    credentials |= {"mqtt_username": fleet.username, "mqtt_password": fleet.password}
    write_private(CREDENTIALS, json.dumps(credentials, indent=2) + "\n")
    return accounts


def broker_child(settings: ApiSettings, accounts: DemoAccounts, *, embedded: bool) -> tuple[Child, str]:
    """Mosquitto when installed (unless ``embedded``), else the embedded broker; and what it is."""
    binary = mosquitto_binary()
    if binary and not embedded:
        conf = MosquittoConfig(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            data_dir=(DEMO_DIR / "mosquitto").resolve(),
            password_file=accounts.store.password_file,
            acl_file=accounts.store.acl_file,
        ).write(DEMO_DIR / "mosquitto.conf")
        return Child("broker", [binary, "-c", str(conf)], settings.mqtt_port), f"Mosquitto ({binary})"
    argv = self_command("broker", "--embedded", "--accounts-dir", str(accounts.store.directory))
    kind = "embedded amqtt" + ("" if embedded else " (Mosquitto not found on PATH)")
    return Child("broker", argv, settings.mqtt_port), kind


def mqtt_login(credentials: Credentials) -> dict[str, str]:
    return {"YIWANG_MQTT_USERNAME": credentials.username, "YIWANG_MQTT_PASSWORD": credentials.password}


def simulator_login(accounts: DemoAccounts) -> dict[str, str]:
    """Each simulated gateway publishes with its own account, handed over in a file (mode 0600) so the
    passwords stay out of the process list and environment dumps; the fleet login stays free for the
    person following the README."""
    community = EdgeSettings().community
    logins = {
        gateway: {"username": login.username, "password": login.password}
        for (of, gateway), login in accounts.gateways.items()
        if of == community
    }
    write_private(SIMULATOR_ACCOUNTS, json.dumps(logins, indent=2, sort_keys=True) + "\n")
    return {"YIWANG_SIM_ACCOUNTS_FILE": str(SIMULATOR_ACCOUNTS.resolve())}


def banner(settings: ApiSettings, broker_kind: str) -> str:
    return (
        f"\nYiwang is up.\n  console   http://{settings.http_host}:{settings.http_port}/console\n"
        f"  broker    {broker_kind} on {settings.mqtt_host}:{settings.mqtt_port}\n"
        f"  login     {CREDENTIALS} (username, password, API token, MQTT login)\n"
        f"  data      {redact(settings.database_url)}, {redact(settings.series_url)}\n"
        "  Ctrl-C stops everything.\n"
    )
