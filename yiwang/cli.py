"""The one CLI: `yiwang up`, `yiwang broker`, `yiwang ingest`, `yiwang alerts`, `yiwang api`, `yiwang edge`.

Service modules are imported inside their commands so a gateway with only `yiwang[edge]` installed can
run `yiwang edge` without FastAPI, SQLAlchemy or the rest of the server stack.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Yiwang (一网) smart-community platform.")
edge_app = typer.Typer(no_args_is_help=True, help="Edge agent commands (run on the gateway).")
db_app = typer.Typer(no_args_is_help=True, help="Relational database commands.")
silence_app = typer.Typer(no_args_is_help=True, help="Silences and maintenance windows of alerts.")
app.add_typer(edge_app, name="edge")
app.add_typer(db_app, name="db")
app.add_typer(silence_app, name="silence")
gateway_app = typer.Typer(no_args_is_help=True, help="Gateway provisioning (run on the server).")
app.add_typer(gateway_app, name="gateway")

DEMO_DIR = Path("var/demo")


@app.command()
def ingest() -> None:
    """Consume telemetry from the broker into the time-series store."""
    from ingest.service import IngestSettings, run
    from yiwang.common.runner import run_until_signalled

    run_until_signalled("ingest", lambda stop: run(IngestSettings(), stop))


@app.command()
def alerts() -> None:
    """Evaluate alert rules on the live stream and open grid cases."""
    from alerts.service import AlertSettings, run
    from yiwang.common.runner import run_until_signalled

    run_until_signalled("alerts", lambda stop: run(AlertSettings(), stop))


@app.command()
def api() -> None:
    """Serve the HTTP API and the operator console."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from yiwang.common.logs import setup_logging

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
    from contract.errors import ContractError
    from edge.agent import run_agent
    from edge.sources.base import ConfigError
    from yiwang.common.runner import run_until_signalled

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
    from edge.service import EdgeSettings, run_simulated_community
    from yiwang.common.runner import run_until_signalled

    run_until_signalled("edge", lambda stop: run_simulated_community(EdgeSettings(), stop))


@edge_app.command("camera")
def edge_camera(
    config: Annotated[Path, typer.Option("--config", help="Camera config (config/cameras/*.yaml).")],
) -> None:
    """Analyse the gateway's cameras on the box and publish anonymous events (frames never leave)."""
    from edge.camera.config import CameraConfigError, load_config
    from edge.camera.runtime import run_cameras
    from edge.service import EdgeSettings
    from yiwang.common.runner import run_until_signalled

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


@app.command()
def broker(
    embedded: Annotated[
        bool, typer.Option(help="Use the embedded amqtt broker even if Mosquitto is installed.")
    ] = False,
    data_dir: Annotated[Path, typer.Option(help="Where Mosquitto keeps its config and persistence.")] = Path(
        "var/broker"
    ),
) -> None:
    """Run the MQTT broker: Mosquitto when installed, otherwise the embedded one."""
    from broker.embedded import run_embedded
    from broker.mosquitto import MosquittoConfig, mosquitto_binary
    from yiwang.common.runner import run_until_signalled
    from yiwang.common.settings import MqttSettings

    settings = MqttSettings()
    binary = mosquitto_binary()
    if binary and not embedded:
        config = MosquittoConfig(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            data_dir=data_dir.resolve(),
            allow_anonymous=True,
        )
        path = config.write(data_dir / "mosquitto.conf")
        typer.echo(f"broker: Mosquitto ({binary}) on {settings.mqtt_host}:{settings.mqtt_port}", err=True)
        os.execv(binary, [binary, "-c", str(path)])  # noqa: S606 - become Mosquitto; signals reach it directly
    typer.echo(
        f"broker: embedded amqtt on {settings.mqtt_host}:{settings.mqtt_port} (install mosquitto for more)",
        err=True,
    )
    run_until_signalled("broker", lambda stop: run_embedded(settings.mqtt_host, settings.mqtt_port, stop))


BENCH_AREAS = ("case-latency", "edge", "alerts", "camera", "ingest", "api")


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
) -> None:
    """Benchmark against real components on this machine, with a ceiling measured in the same run."""
    import json

    from yiwang.bench import case_latency
    from yiwang.common.settings import ServiceSettings

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

        result = ingest_bench.run(ServiceSettings().config_dir, seconds=seconds, replicas=replicas)
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
    from yiwang.common.db import make_engine
    from yiwang.common.settings import ServiceSettings
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
    engine = make_engine(url)
    silence = SilenceStore(engine).add(request, author=author)
    engine.dispose()
    typer.echo(f"silence {silence.id} ({silence.kind}) until {silence.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list() -> None:
    """Silences that have not ended yet."""
    from alerts.silences import SilenceStore
    from yiwang.common.db import make_engine
    from yiwang.common.settings import ServiceSettings

    engine = make_engine(ServiceSettings().database_url)
    for s in SilenceStore(engine).current():
        matchers = ", ".join(f"{k}={v}" for k, v in s.matchers.model_dump(exclude_none=True).items())
        period = f"{s.starts_at.isoformat()} → {s.ends_at.isoformat()}"
        typer.echo(f"{s.id}\t{s.kind}\t{matchers}\t{period}\t{s.author}\t{s.comment}")
    engine.dispose()


@silence_app.command("expire")
def silence_expire(silence_id: int) -> None:
    """End a silence now."""
    from alerts.silences import SilenceStore
    from yiwang.common.db import make_engine
    from yiwang.common.settings import ServiceSettings

    engine = make_engine(ServiceSettings().database_url)
    ended = SilenceStore(engine).expire(silence_id)
    engine.dispose()
    if not ended:
        typer.echo(f"no running silence {silence_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence {silence_id} ended")


@db_app.command("init")
def db_init() -> None:
    """Create every table that is missing (idempotent)."""
    from yiwang.common.settings import ServiceSettings
    from yiwang.schema import create_all

    create_all(ServiceSettings().database_url)


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
    from broker.mosquitto import MosquittoConfig, mosquitto_binary
    from yiwang.common.db import make_engine
    from yiwang.common.logs import setup_logging
    from yiwang.schema import create_all, reset_demo_database_if_outdated
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
    create_all(settings.database_url)
    engine = make_engine(settings.database_url)
    credentials_path = DEMO_DIR / "credentials.json"
    ensure_demo_operator(engine, credentials_path)
    engine.dispose()

    binary = mosquitto_binary()
    if binary and not embedded_broker:
        conf = MosquittoConfig(
            host=host,
            port=settings.mqtt_port,
            data_dir=(DEMO_DIR / "mosquitto").resolve(),
            allow_anonymous=True,
        ).write(DEMO_DIR / "mosquitto.conf")
        broker_child, broker_kind = (
            Child("broker", [binary, "-c", str(conf)], settings.mqtt_port),
            f"Mosquitto ({binary})",
        )
    else:
        broker_child = Child("broker", self_command("broker", "--embedded"), settings.mqtt_port)
        broker_kind = "embedded amqtt (Mosquitto not found on PATH)"

    supervisor = Supervisor(env, host)
    supervisor.install_signal_handlers()
    code = 1
    try:
        supervisor.start(broker_child)
        supervisor.start(Child("ingest", self_command("ingest")))
        supervisor.start(Child("alerts", self_command("alerts")))
        supervisor.start(Child("api", self_command("api"), settings.http_port))
        if simulate:
            supervisor.start(Child("edge-sim", self_command("edge", "simulate")))
        typer.echo(
            f"\nYiwang is up.\n  console   http://{settings.http_host}:{settings.http_port}/console\n"
            f"  broker    {broker_kind} on {host}:{settings.mqtt_port}\n"
            f"  login     {credentials_path} (username, password, API token)\n"
            f"  data      {settings.database_url}, {settings.series_url}\n  Ctrl-C stops everything.\n",
            err=True,
        )
        code = supervisor.watch()
    except RuntimeError as err:
        typer.echo(f"yiwang up: {err}", err=True)
    finally:
        supervisor.stop_all()
    raise typer.Exit(code)
