"""The server services, one process each: `yiwang ingest`, `alerts`, `cases`, `api`, `broker`.

Service modules are imported inside their commands so a gateway with only `yiwang[edge]` installed can
run `yiwang edge` without FastAPI, SQLAlchemy or the rest of the server stack.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app


def reload_on_sighup(service: str) -> None:
    """SIGHUP reads config/ (sensor types, rules) into the definitions store, as `yiwang reload` does;
    every service follows the store, so one signalled service updates them all (#28). The work runs in
    a thread: a signal handler must return at once, and a refused change is logged, not raised."""
    import logging
    import threading

    from common.db import make_engine
    from common.settings import ServiceSettings
    from contract.errors import ContractError
    from registry.definitions import DefinitionConflict
    from yiwang.cli.rules import reload_config

    log = logging.getLogger(f"{service}.reload")

    def reload() -> None:
        settings = ServiceSettings()
        db = make_engine(settings.database_url)
        try:
            result = reload_config(settings.config_dir, db, f"sighup:{service}")
            log.info(
                "SIGHUP: %d sensor type(s) added, rule files changed: %s",
                len(result.profiles_added),
                ", ".join(result.rule_files_changed) or "none",
            )
        except (ContractError, DefinitionConflict, ValueError) as err:
            log.error("SIGHUP: config/ refused, the running set is kept: %s", err)
        except Exception:  # the database is down, say: the service itself runs on
            log.exception("SIGHUP: config/ could not be read into the store")
        finally:
            db.dispose()

    signal.signal(signal.SIGHUP, lambda _signum, _frame: threading.Thread(target=reload, daemon=True).start())


@app.command()
def ingest() -> None:
    """Consume telemetry from the broker into the time-series store."""
    from common.runner import run_until_signalled
    from ingest.service import IngestSettings, run

    reload_on_sighup("ingest")
    run_until_signalled("ingest", lambda stop: run(IngestSettings(), stop))


@app.command()
def alerts() -> None:
    """Evaluate alert rules on the live stream and open grid cases."""
    from alerts.service import AlertSettings, run
    from common.runner import run_until_signalled

    reload_on_sighup("alerts")
    run_until_signalled("alerts", lambda stop: run(AlertSettings(), stop))


@app.command()
def cases() -> None:
    """Run the case clocks: SLA stages and supervision (督办), auto-check, notifications."""
    from alerts.intake import alerts_clear
    from cases.service import CaseSettings, run
    from common.runner import run_until_signalled

    # The roof composes: whether a case's signals stayed clear is the alert engine's judgement.
    run_until_signalled("cases", lambda stop: run(CaseSettings(), stop, alerts_clear))


@app.command()
def api() -> None:
    """Serve the HTTP API and the operator console."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from common.logs import setup_logging

    setup_logging("api")
    settings = ApiSettings()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler in place
    # when it started; an ignoring handler makes that graceful stop exit 0 instead of -15.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: None)
    reload_on_sighup("api")
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        timeout_graceful_shutdown=5,  # open console event streams must not hold a stop for long
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default and rewrites the peer before the
        # app sees it: only the configured proxies may speak for a client (the login throttle counts it).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


@app.command()
def broker(
    embedded: Annotated[
        bool, typer.Option(help="Use the embedded amqtt broker even if Mosquitto is installed.")
    ] = False,
    data_dir: Annotated[Path, typer.Option(help="Where Mosquitto keeps its config and persistence.")] = Path(
        "var/broker"
    ),
    accounts_dir: Annotated[
        Path | None,
        typer.Option(help="Password file + ACL (`yiwang gateway add`); default: <data-dir>/accounts."),
    ] = None,
    allow_anonymous: Annotated[
        bool, typer.Option(help="No accounts at all: only for a throw-away benchmark broker.")
    ] = False,
) -> None:
    """Run the MQTT broker: Mosquitto when installed, otherwise the embedded one. Logins required."""
    from broker.accounts import AccountStore
    from broker.embedded import run_embedded
    from broker.mosquitto import MosquittoConfig, mosquitto_binary
    from common.runner import run_until_signalled
    from common.settings import MqttSettings

    settings = MqttSettings()
    store = None if allow_anonymous else AccountStore((accounts_dir or data_dir / "accounts").resolve())
    if store is not None and not store.usernames():
        raise typer.BadParameter(
            f"no broker accounts in {store.password_file}: add them with `yiwang gateway add` "
            "(gateways) and `yiwang broker-account service NAME` (services), or pass --allow-anonymous for a "
            "throw-away broker"
        )
    binary = mosquitto_binary()
    if binary and not embedded:
        config = MosquittoConfig(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            data_dir=data_dir.resolve(),
            allow_anonymous=allow_anonymous,
            password_file=store.password_file if store else None,
            acl_file=store.acl_file if store else None,
        )
        path = config.write(data_dir / "mosquitto.conf")
        typer.echo(f"broker: Mosquitto ({binary}) on {settings.mqtt_host}:{settings.mqtt_port}", err=True)
        os.execv(binary, [binary, "-c", str(path)])  # noqa: S606 - become Mosquitto; signals reach it directly
    typer.echo(
        f"broker: embedded amqtt on {settings.mqtt_host}:{settings.mqtt_port} (install mosquitto for more)",
        err=True,
    )
    directory = store.directory if store else None
    run_until_signalled(
        "broker", lambda stop: run_embedded(settings.mqtt_host, settings.mqtt_port, stop, directory)
    )
