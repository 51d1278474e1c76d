"""The one CLI: `yiwang up`, `yiwang broker`, `yiwang ingest`, `yiwang alerts`, `yiwang api`, `yiwang edge`.

Service modules are imported inside their commands so a gateway with only `yiwang[edge]` installed can
run `yiwang edge` without FastAPI, SQLAlchemy or the rest of the server stack.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from broker.accounts import Credentials

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Yiwang (一网) smart-community platform.")
edge_app = typer.Typer(no_args_is_help=True, help="Edge agent commands (run on the gateway).")
db_app = typer.Typer(no_args_is_help=True, help="Relational database commands.")
silence_app = typer.Typer(no_args_is_help=True, help="Silences and maintenance windows of alerts.")
app.add_typer(edge_app, name="edge")
app.add_typer(db_app, name="db")
app.add_typer(silence_app, name="silence")
gateway_app = typer.Typer(no_args_is_help=True, help="Gateway provisioning (run on the server).")
app.add_typer(gateway_app, name="gateway")
account_app = typer.Typer(no_args_is_help=True, help="Broker accounts of the server services.")
app.add_typer(account_app, name="broker-account")

DEMO_DIR = Path("var/demo")


@app.command()
def ingest() -> None:
    """Consume telemetry from the broker into the time-series store."""
    from common.runner import run_until_signalled
    from ingest.service import IngestSettings, run

    run_until_signalled("ingest", lambda stop: run(IngestSettings(), stop))


@app.command()
def alerts() -> None:
    """Evaluate alert rules on the live stream and open grid cases."""
    from alerts.service import AlertSettings, run
    from common.runner import run_until_signalled

    run_until_signalled("alerts", lambda stop: run(AlertSettings(), stop))


@app.command()
def api() -> None:
    """Serve the HTTP API and the operator console."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from common.logs import setup_logging

    setup_logging("api")
    settings = ApiSettings()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the handler that
    # was installed before it; an ignoring handler makes that graceful stop exit 0 instead of -15.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: None)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        timeout_graceful_shutdown=5,  # open console event streams must not hold a stop for long
    )


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


BENCH_AREAS = ("case-latency", "edge", "alerts", "camera", "ingest", "api", "soak")


@app.command()
def bench(
    area: Annotated[str, typer.Argument(help=f"What to measure: {', '.join(BENCH_AREAS)}.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    trials: Annotated[int, typer.Option(min=1, help="Repetitions.")] = 20,
    embedded_broker: Annotated[
        bool, typer.Option(help="Use the embedded broker instead of Mosquitto.")
    ] = False,
    seconds: Annotated[float, typer.Option(min=1, help="Load duration per phase (ingest).")] = 15.0,
    replicas: Annotated[int, typer.Option(min=1, help="Ingest processes (ingest; >1: shared sub).")] = 1,
    rounds: Annotated[
        int, typer.Option(min=1, help="Batched rounds between ceilings; the median ratio counts (ingest).")
    ] = 5,
    minutes: Annotated[float, typer.Option(min=0.1, help="Soak duration at half capacity (soak).")] = 30.0,
    plot_dir: Annotated[Path | None, typer.Option(help="Write the soak's PNG curves here (soak).")] = None,
) -> None:
    """Benchmark against real components on this machine, with a ceiling measured in the same run."""
    import json

    from common.settings import ServiceSettings
    from yiwang.bench import case_latency

    if area not in BENCH_AREAS:
        raise typer.BadParameter(f"unknown area {area!r}; one of {', '.join(BENCH_AREAS)}")
    if area == "edge":
        from yiwang.bench import edge as edge_bench

        result = edge_bench.run(ServiceSettings().config_dir)
    elif area == "api":
        from yiwang.bench import api as api_bench

        result = api_bench.run(ServiceSettings().config_dir)
    elif area == "alerts":
        from yiwang.bench import alerts as alerts_bench

        result = alerts_bench.run(ServiceSettings().config_dir)
    elif area == "ingest":
        from yiwang.bench import ingest as ingest_bench

        result = ingest_bench.run(
            ServiceSettings().config_dir, seconds=seconds, replicas=replicas, rounds=rounds
        )
    elif area == "soak":
        from yiwang.bench import soak as soak_bench

        result = soak_bench.run(ServiceSettings().config_dir, minutes=minutes, plot_dir=plot_dir)
    elif area == "camera":
        from yiwang.bench import camera as camera_bench

        # Here --trials is the number of noise seeds of the synthetic quality suite (10 clips each).
        result = camera_bench.run(seeds=min(trials, 5))
    else:
        result = case_latency.run(
            ServiceSettings().config_dir, trials=trials, embedded_broker=embedded_broker
        )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2, ensure_ascii=False))


@silence_app.command("add")
def silence_add(
    author: Annotated[str, typer.Option(help="Who sets it (kept with the silence).")],
    hours: Annotated[float, typer.Option(min=0.01, help="How long it lasts from now.")] = 2.0,
    device: Annotated[str | None, typer.Option()] = None,
    gateway: Annotated[str | None, typer.Option()] = None,
    grid: Annotated[str | None, typer.Option()] = None,
    community: Annotated[str | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    maintenance: Annotated[
        bool, typer.Option(help="A maintenance window: the alerts count as inhibited.")
    ] = False,
    comment: Annotated[str, typer.Option()] = "",
) -> None:
    """Silence matching alerts (no cases open) for a while."""
    from datetime import UTC, datetime, timedelta

    from pydantic import ValidationError

    from alerts.silences import Matchers, SilenceIn, SilenceStore
    from common.db import make_engine
    from common.settings import ServiceSettings
    from yiwang.schema import create_all

    try:
        matchers = Matchers(
            device=device, gateway=gateway, grid=grid, community=community, rule=rule, category=category
        )
        request = SilenceIn(
            kind="maintenance" if maintenance else "silence",
            matchers=matchers,
            ends_at=datetime.now(UTC) + timedelta(hours=hours),
            comment=comment,
        )
    except ValidationError as err:
        raise typer.BadParameter(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        ) from err
    url = ServiceSettings().database_url
    create_all(url)
    db = make_engine(url)
    silence = SilenceStore(db).add(request, author=author)
    db.dispose()
    typer.echo(f"silence {silence.id} ({silence.kind}) until {silence.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list() -> None:
    """Silences that have not ended yet."""
    from alerts.silences import SilenceStore
    from common.db import make_engine
    from common.settings import ServiceSettings

    db = make_engine(ServiceSettings().database_url)
    for s in SilenceStore(db).current():
        matchers = ", ".join(f"{k}={v}" for k, v in s.matchers.model_dump(exclude_none=True).items())
        period = f"{s.starts_at.isoformat()} → {s.ends_at.isoformat()}"
        typer.echo(f"{s.id}\t{s.kind}\t{matchers}\t{period}\t{s.author}\t{s.comment}")
    db.dispose()


@silence_app.command("expire")
def silence_expire(silence_id: int) -> None:
    """End a silence now."""
    from alerts.silences import SilenceStore
    from common.db import make_engine
    from common.settings import ServiceSettings

    db = make_engine(ServiceSettings().database_url)
    ended = SilenceStore(db).expire(silence_id)
    db.dispose()
    if not ended:
        typer.echo(f"no running silence {silence_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence {silence_id} ended")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the newest schema: create it, adopt one made by create_all, or migrate."""
    from common.settings import ServiceSettings
    from yiwang.schema import ensure_schema

    typer.echo(f"db: {ensure_schema(ServiceSettings().database_url)}")


@db_app.command("init")
def db_init() -> None:
    """The same as `yiwang db upgrade` (idempotent); kept for deployments that call it."""
    db_upgrade()


@db_app.command("current")
def db_current() -> None:
    """The schema revision the database is at, and the newest this version knows."""
    from common.db import make_engine
    from common.settings import ServiceSettings
    from yiwang import migrations

    db = make_engine(ServiceSettings().database_url)
    try:
        at = migrations.current(db)
    finally:
        db.dispose()
    head = migrations.head()
    state = "up to date" if at == head else "run `yiwang db upgrade`"
    typer.echo(f"{at or 'none (not managed by migrations yet)'} (head {head}: {state})")
    if at != head:
        raise typer.Exit(1)


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision changes.")],
    empty: Annotated[bool, typer.Option(help="An empty script to fill by hand (data migrations).")] = False,
) -> None:
    """Write a new revision from the difference between the newest revision and the models (developers).

    The comparison runs against a scratch SQLite database built by replaying every revision, so it needs
    no server and sees exactly what the revisions create. Read the script before committing it.
    """
    import tempfile

    from common.db import make_engine
    from yiwang import migrations

    with tempfile.TemporaryDirectory() as scratch:
        db = make_engine(f"sqlite:///{scratch}/head.db")
        try:
            migrations.upgrade(db)
            path = migrations.revision(db, message, autogenerate=not empty)
        finally:
            db.dispose()
    typer.echo(f"wrote {path}")


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


chaos_app = typer.Typer(no_args_is_help=True, help="Whole-system fault injection on this machine.")
app.add_typer(chaos_app, name="chaos")


@chaos_app.command("run")
def chaos_run(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="Only these (repeatable).")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each scenario, each on a fresh stack.")] = 2,
    scale: Annotated[float, typer.Option(min=0.01, help="Fault durations × this (0.1: 60 s → 6 s).")] = 1.0,
) -> None:
    """Real Mosquitto, influxd, PostgreSQL, ingest, alerts and gateways; faults injected; nothing lost."""
    import json

    from common.settings import ServiceSettings
    from yiwang.chaos.run import run as run_chaos

    try:
        result = run_chaos(ServiceSettings().config_dir, names=scenario or (), repeats=repeats, scale=scale)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2, ensure_ascii=False))
    if not all(s["ok"] for s in result["scenarios"]):
        raise typer.Exit(1)


def main() -> None:
    """The `yiwang` command: settings errors from the environment end in one clear line, not a traceback."""
    from pydantic import ValidationError

    try:
        app(standalone_mode=True)
    except ValidationError as err:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        typer.echo(f"yiwang: refusing to start: {reasons}", err=True)
        raise SystemExit(2) from None
