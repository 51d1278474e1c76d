"""docker-compose.yml: valid against the Compose specification, and keeping the deployment's promises.

There is no Docker engine on the build machine, so the file is validated with check-jsonschema's
vendored Compose specification schema (offline; it rejects unknown keys), and its promises (restart
policies, health checks, loopback-only ports, required secrets, the Mosquitto limits, real ``yiwang``
subcommands) are checked on the parsed YAML. The health-check scripts themselves are run here against
a local HTTP server, a SQLite heartbeat table and, in the integration test, a real Mosquitto.
"""

from __future__ import annotations

import getpass
import http.server
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import typer
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from setuptools import find_namespace_packages

from broker.accounts import AccountStore, Credentials
from broker.mosquitto import MosquittoConfig, mosquitto_binary
from yiwang.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
DATABASE_ONLY = {"cases", "migrate"}  # Yiwang services that never talk to the broker
# The broker keys a session by its account: every MQTT client of the stack needs one of its own.
MQTT_ACCOUNTS = {
    "ingest": ("svc.ingest-1", "YIWANG_INGEST_1_MQTT_PASSWORD"),
    "ingest-2": ("svc.ingest-2", "YIWANG_INGEST_2_MQTT_PASSWORD"),
    "alerts": ("svc.alerts", "YIWANG_ALERTS_MQTT_PASSWORD"),
    "mosquitto": ("svc.healthcheck", "YIWANG_HEALTHCHECK_MQTT_PASSWORD"),  # its healthcheck
    "api": ("admin.api", "YIWANG_API_MQTT_PASSWORD"),  # publishes the gateways' desired configs
}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET")
# `$$` is compose's escape for a literal `$`; everything else starting with `$` is interpolated.
DOLLAR = re.compile(r"\$\$|\$\{(?P<braced>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\$")
BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def strings(node: object) -> Iterator[str]:
    """Every key and scalar value of the parsed file: what compose interpolates (comments are not)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


def interpolations(data: object) -> list[tuple[str, str | None, str]]:
    """Every interpolation in ``data`` as (name, operator or None, argument); raises on bad syntax."""
    found: list[tuple[str, str | None, str]] = []
    for text in strings(data):
        for match in DOLLAR.finditer(text):
            if match.group(0) == "$$":
                continue
            if match.group("bare"):
                found.append((match.group("bare"), None, ""))
                continue
            braced = match.group("braced")
            parsed = BRACED.match(braced) if braced is not None else None
            if parsed is None:
                raise AssertionError(f"not a valid compose interpolation: {match.group(0)!r} in {text!r}")
            found.append((parsed["name"], parsed["op"], parsed["arg"] or ""))
    return found


def with_defaults(value: object) -> str:
    """``value`` as compose would see it with no variables set and only the ``:-`` defaults applied."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        parsed = BRACED.match(match.group("braced") or "")
        assert parsed is not None and parsed["op"] == ":-", f"{match.group(0)} has no default"
        return str(parsed["arg"])

    return DOLLAR.sub(substitute, str(value))


def one_shot_services() -> set[str]:
    """Services others wait for to *complete*: jobs, not long-running services."""
    return {
        target
        for svc in services().values()
        for target, dep in (svc.get("depends_on") or {}).items()
        if dep.get("condition") == "service_completed_successfully"
    }


def yiwang_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services().items() if str(svc.get("image", "")).startswith("yiwang:")}


def published_ports(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(host ip, published port) of each published port, defaults applied; short syntax too."""
    out = []
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            if "published" in port:
                out.append((with_defaults(port.get("host_ip", "0.0.0.0")), with_defaults(port["published"])))
            continue
        parts = with_defaults(port).rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1]))
        elif len(parts) == 2:
            out.append(("0.0.0.0", parts[0]))
    return out


def mounted_source(svc: dict[str, Any], target: str) -> str:
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("target") == target:
            return with_defaults(volume["source"])
        if isinstance(volume, str) and volume.split(":")[1] == target:
            return with_defaults(volume.split(":")[0])
    raise AssertionError(f"nothing is mounted at {target}")


def config_options(text: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


# --- the schema ---------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    result = check_jsonschema(COMPOSE)
    assert result.returncode == 0, f"check-jsonschema failed:\n{result.stdout}\n{result.stderr}"


def test_schema_check_rejects_an_unknown_service_key(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["api"]["restart_policy_typo"] = "always"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False), encoding="utf-8")

    result = check_jsonschema(path)

    assert result.returncode != 0, f"an unknown key passed validation:\n{result.stdout}\n{result.stderr}"
    assert "restart_policy_typo" in result.stdout + result.stderr


# --- restart policies, health checks and start order ---------------------------------------------------


def test_every_service_restarts_and_reports_its_health() -> None:
    one_shots = one_shot_services()
    assert "migrate" in one_shots
    for name, svc in services().items():
        if name in one_shots:
            assert svc.get("restart") == "no", f"{name} is a one-shot job and must not be restarted"
            continue
        assert svc.get("restart") in RESTART_POLICIES, f"{name} has no restart policy"
        check = svc.get("healthcheck")
        reason = svc.get("x-healthcheck-omitted")
        if check is None:
            assert isinstance(reason, str) and reason.strip(), f"{name}: no healthcheck and no reason why"
            continue
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        test = check.get("test")
        assert test, f"{name}: healthcheck without a test"
        assert test[0] in {"CMD", "CMD-SHELL"}, f"{name}: healthcheck test {test[0]!r}"


def test_start_order_waits_for_health_and_for_the_migration() -> None:
    all_services = services()
    one_shots = one_shot_services()
    for name, svc in all_services.items():
        for target, dep in (svc.get("depends_on") or {}).items():
            assert target in all_services, f"{name} depends on unknown service {target}"
            if dep["condition"] == "service_healthy":
                assert "healthcheck" in all_services[target], f"{name} waits for {target}'s missing check"
            else:
                assert dep["condition"] == "service_completed_successfully", f"{name} -> {target}"
    for name in ("ingest", "alerts", "api"):
        deps = all_services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["mosquitto"]["condition"] == "service_healthy"
        stores = {"mosquitto", "influxdb", "postgres"} | ({"minio"} if name == "api" else set())
        assert set(deps) - one_shots <= stores  # the api alone keeps photos, in minio's bucket
    # The case clocks need the database alone: a broker outage must not keep them from starting.
    deps = all_services["cases"]["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert set(deps) - one_shots == {"postgres"}


# --- ports, replicas, variables -------------------------------------------------------------------------


def test_only_the_api_may_publish_beyond_loopback_and_not_by_default() -> None:
    for name, svc in services().items():
        for host_ip, _published in published_ports(svc):
            # The api's host_ip may be set through YIWANG_API_BIND; its default is loopback like the rest.
            assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip}"
            if name != "api":
                assert "$" not in str(svc["ports"]), f"{name}'s published address is configurable"
    assert published_ports(services()["api"]) == [("127.0.0.1", "8000")]


def test_ingest_runs_two_replicas_in_one_share_group() -> None:
    replicas = [services()["ingest"], services()["ingest-2"]]
    assert {r["environment"]["YIWANG_INGEST_SHARE_GROUP"] for r in replicas} == {"ingest"}
    # Distinct stable client ids: one persistent session per replica.
    assert [r["environment"]["YIWANG_INGEST_REPLICA"] for r in replicas] == ["1", "2"]
    assert all(r["command"] == ["ingest"] and "ports" not in r for r in replicas)


def test_secrets_are_required_and_nothing_is_silently_empty() -> None:
    found = interpolations(compose())
    assert found
    for name, op, arg in found:
        assert op in {":?", ":-"}, f"${{{name}}} would be empty when unset; use :? or :-"
        if SECRET_NAME.search(name):
            assert op == ":?" and arg.strip(), f"secret {name} must be required: ${{{name}:?message}}"
    secrets = {name for name, _, _ in found if SECRET_NAME.search(name)}
    mqtt_passwords = {variable for _, variable in MQTT_ACCOUNTS.values()}
    assert {"POSTGRES_PASSWORD", "INFLUXDB_TOKEN", "YIWANG_SESSION_SECRET"} | mqtt_passwords <= secrets


def test_every_mqtt_client_logs_in_with_an_account_of_its_own() -> None:
    logins = {
        name: (svc["environment"]["YIWANG_MQTT_USERNAME"], svc["environment"]["YIWANG_MQTT_PASSWORD"])
        for name, svc in services().items()
        if "YIWANG_MQTT_USERNAME" in (svc.get("environment") or {})
    }
    assert set(logins) == set(MQTT_ACCOUNTS), "an MQTT client without its own account, or one too many"
    for name, (username, password) in logins.items():
        expected_user, variable = MQTT_ACCOUNTS[name]
        assert username == expected_user, name
        assert interpolations(password) == [(variable, ":?", f"set {variable} in .env")], name


def test_env_example_names_every_variable_with_placeholder_secrets() -> None:
    example = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line!r}"
            example[key.strip()] = value.strip()
    used = {name for name, _, _ in interpolations(compose())}
    assert used - set(example) == set(), "variables docker-compose.yml uses but .env.example lacks"
    assert set(example) - used == set(), "variables in .env.example that docker-compose.yml never uses"
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "changethis", f"{key} in .env.example must be the placeholder"


# --- what the services run ----------------------------------------------------------------------------


def test_yiwang_services_run_real_subcommands() -> None:
    # Typer vendors its own click: a group is a command with subcommands, whatever its class.
    cli: Any = typer.main.get_command(app)
    assert "ingest" in cli.commands
    ours = yiwang_services()
    assert {"migrate", "ingest", "alerts", "cases", "api"} <= set(ours)
    for name, svc in ours.items():
        assert "entrypoint" not in svc, f"{name} must run the image's `yiwang` entrypoint"
        command = svc["command"]
        args = command if isinstance(command, list) else shlex.split(command)
        shown = f"{name}: `yiwang {' '.join(args)}`"
        found = cli
        for arg in args:
            if arg.startswith("-"):
                break
            subcommands = getattr(found, "commands", None)
            assert subcommands is not None, f"{shown}: {arg!r} is one argument too many"
            found = subcommands.get(arg)
            assert found is not None, f"{shown} is no yiwang subcommand"
        assert getattr(found, "commands", None) is None, f"{shown} names a group, not a command"


def test_yiwang_services_reach_their_peers_by_service_name() -> None:
    all_services = services()
    for name, svc in yiwang_services().items():
        env = svc["environment"]
        if name in DATABASE_ONLY:
            assert not [k for k in env if k.startswith("YIWANG_MQTT_")], f"{name} needs no broker login"
        else:
            assert env["YIWANG_MQTT_HOST"] == "mosquitto", name
        assert "@postgres:5432/" in env["YIWANG_DATABASE_URL"], name
        assert env["YIWANG_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert svc["build"] == "." and svc["image"] == "yiwang:0.1.0", name
    for name in ("ingest", "api"):
        assert all_services[name]["environment"]["YIWANG_SERIES_URL"].startswith("influxdb://influxdb:8086/")
    assert all_services["api"]["environment"]["YIWANG_HTTP_HOST"] == "0.0.0.0"


def test_dockerfile_copies_every_package_and_dockerignore_keeps_secrets_out() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.split(".")[0] for p in find_namespace_packages(where=str(ROOT), include=include)}
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    assert packages == copied
    assert re.search(r"^USER 10001", dockerfile, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["yiwang"]' in dockerfile
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", "broker/accounts/", ".venv", "var", ".git", "tests"} <= ignored


# --- Mosquitto ----------------------------------------------------------------------------------------


def mosquitto_conf_path() -> Path:
    source = mounted_source(services()["mosquitto"], "/mosquitto/config/mosquitto.conf")
    return (ROOT / source).resolve()


def test_mosquitto_config_keeps_its_promises() -> None:
    path = mosquitto_conf_path()
    assert path.is_file(), f"{path} is mounted but missing"
    text = path.read_text(encoding="utf-8")
    lines = {line.strip() for line in text.splitlines()}
    assert {"allow_anonymous false", "persistence true", "max_queued_messages 1000000"} <= lines
    options = config_options(text)
    # Logins and the per-role ACL from the directory `yiwang gateway add` / `broker-account` write.
    assert options["password_file"] == ["/mosquitto/config/accounts/passwd"]
    assert options["acl_file"] == ["/mosquitto/config/accounts/acl"]
    assert mounted_source(services()["mosquitto"], "/mosquitto/config/accounts")
    assert options["persistence_location"] == ["/mosquitto/data/"]
    assert mounted_source(services()["mosquitto"], "/mosquitto/data") == "mosquitto-data"


def test_every_listener_binds_sessions_to_accounts_the_commented_tls_one_too() -> None:
    lines = [line.strip() for line in mosquitto_conf_path().read_text(encoding="utf-8").splitlines()]
    listeners = [i for i, line in enumerate(lines) if line.removeprefix("# ").startswith("listener ")]
    assert len(listeners) == 2, "the plain listener and the commented TLS one"
    for i in listeners:
        commented = lines[i].startswith("#")
        following = lines[i + 1].removeprefix("# ") if commented else lines[i + 1]
        assert following == "use_username_as_clientid true", f"{lines[i]!r} does not bind sessions"


def test_mosquitto_limits_match_the_generated_config() -> None:
    """The compose config and broker/mosquitto.py must not drift apart."""
    generated = MosquittoConfig(host="127.0.0.1", port=1883, data_dir=Path("/d"), password_file=Path("/p"))
    rendered = config_options(generated.render())
    ours = config_options(mosquitto_conf_path().read_text(encoding="utf-8"))
    assert rendered["use_username_as_clientid"] == ["true"]
    local_only = {
        "user",
        "listener",
        "persistence_location",
        "password_file",
        "acl_file",
        "log_timestamp_format",
    }
    for key in rendered.keys() - local_only:
        assert ours.get(key) == rendered[key], (
            f"{key}: compose {ours.get(key)} != mosquitto.py {rendered[key]}"
        )


@pytest.fixture
def compose_mosquitto(tmp_path: Path) -> Iterator[tuple[int, dict[str, Credentials]]]:
    """Mosquitto on the compose config (paths and port moved into tmp_path) with the compose accounts
    and one gateway, by compose service name (and ``gateway``)."""
    binary = mosquitto_binary()
    # Like the other integration tests: Debian's mosquitto package is a test requirement (.ci/run).
    assert binary is not None and shutil.which("mosquitto_sub") is not None, (
        "the integration tests need mosquitto and mosquitto_sub"
    )
    # The accounts the compose services use, made the way broker/mosquitto.compose.conf says.
    store = AccountStore(tmp_path / "accounts")
    logins = {
        service: store.add_service(username.split(".", 1)[1], admin=username.startswith("admin."))
        for service, (username, _) in MQTT_ACCOUNTS.items()
    }
    logins["gateway"] = store.add_gateway("zhuganxiang", "gw-01")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    text = mosquitto_conf_path().read_text(encoding="utf-8")
    for old, new in (
        ("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n"),
        ("/mosquitto/data/", f"{tmp_path}/data/"),
        ("/mosquitto/config/accounts/", f"{store.directory}/"),
    ):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "data").mkdir()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text + f"user {getpass.getuser()}\n", encoding="utf-8")
    log = (tmp_path / "mosquitto.log").open("wb")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not start:\n{(tmp_path / 'mosquitto.log').read_text()}")
                time.sleep(0.05)
        yield port, logins
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def run_healthcheck(port: int, password: str) -> subprocess.CompletedProcess[str]:
    """The mosquitto service's healthcheck as its container's shell runs it, against ``port``."""
    mosquitto = services()["mosquitto"]
    test = mosquitto["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert test[1].count("-p 1883") == 1
    command = test[1].replace("$$", "$").replace("-p 1883", f"-p {port}")
    env = {
        "YIWANG_MQTT_USERNAME": mosquitto["environment"]["YIWANG_MQTT_USERNAME"],
        "YIWANG_MQTT_PASSWORD": password,
    }
    return subprocess.run(
        ["sh", "-c", command], env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )


@pytest.mark.integration
def test_mosquitto_healthcheck_logs_in_and_anonymous_clients_are_refused(
    compose_mosquitto: tuple[int, dict[str, Credentials]],
) -> None:
    port, logins = compose_mosquitto
    ok = run_healthcheck(port, logins["mosquitto"].password)
    assert ok.returncode == 0, f"healthcheck failed:\n{ok.stdout}\n{ok.stderr}"
    wrong = run_healthcheck(port, "wrong")
    assert wrong.returncode != 0, "healthcheck passed with a wrong password"
    anonymous = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "x", "-E", "-W", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert anonymous.returncode != 0, "an anonymous client was accepted"


def connect(port: int, login: Credentials, client_id: str, *, clean: bool) -> mqtt.Client:
    """A connected MQTT 3.1.1 client that does not reconnect on its own (a kick must show)."""
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.username_pw_set(login.username, login.password)
    client.on_connect = lambda _c, _u, _f, reason, _p: None if reason.is_failure else connected.set()
    client.reconnect_delay_set(60, 60)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10), f"{login.username} was not accepted"
    return client


@pytest.mark.integration
def test_the_healthcheck_and_a_stolen_gateway_key_leave_an_ingest_session_alone(
    compose_mosquitto: tuple[int, dict[str, Credentials]],
) -> None:
    """Clean-start connections that name an ingest replica's client id must not kick it or drop its
    persistent session: the healthcheck's (every 30 s) and an attacker's with a gateway's key."""
    port, logins = compose_mosquitto
    topic = "yiwang/v1/zhuganxiang/gw-01/telemetry"
    received: list[bytes] = []
    dropped = threading.Event()
    ingest = connect(port, logins["ingest"], "yiwang-ingest-1", clean=False)
    ingest.on_disconnect = lambda *_: dropped.set()
    ingest.on_message = lambda _c, _u, msg: received.append(bytes(msg.payload))
    ingest.subscribe(topic, qos=1)
    gateway: mqtt.Client | None = None
    try:
        ok = run_healthcheck(port, logins["mosquitto"].password)
        assert ok.returncode == 0, f"healthcheck failed:\n{ok.stdout}\n{ok.stderr}"
        for client_id in ("yiwang-ingest-1", "svc.ingest-1"):
            connect(port, logins["gateway"], client_id, clean=True).disconnect()
        gateway = connect(port, logins["gateway"], "yiwang-edge-zhuganxiang-gw-01", clean=True)
        gateway.publish(topic, b"after", qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while b"after" not in received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not dropped.is_set(), "a clean-start connection kicked the ingest replica"
        assert b"after" in received, "the ingest replica lost its subscription"
    finally:
        for client in (ingest, gateway):
            if client is not None:
                client.disconnect()
                client.loop_stop()


# --- the Yiwang services' health checks ---------------------------------------------------------------


def python_check(service: str) -> list[str]:
    """The healthcheck as a local command: ["CMD", "python", ...] run with this interpreter."""
    test = services()[service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    assert all("$" not in arg for arg in test), "a `$` would be interpolated by compose"
    return [sys.executable, *test[2:]]


@pytest.mark.parametrize(
    ("instance_host", "age_s", "healthy"),
    [
        (None, 0, False),  # never beat
        ("other-container", 1, False),  # a fresh heartbeat, but another replica's
        ("self", 1, True),
        ("self", 120, False),  # stale
    ],
)
@pytest.mark.parametrize("service", ["ingest", "alerts", "cases"])
def test_heartbeat_healthcheck_wants_a_fresh_heartbeat_of_its_own(
    tmp_path: Path, service: str, instance_host: str | None, age_s: float, healthy: bool
) -> None:
    from common.db import make_engine
    from common.heartbeat import create_schema, heartbeats

    url = f"sqlite:///{tmp_path / 'yiwang.db'}"
    db = make_engine(url)
    create_schema(db)
    if instance_host is not None:
        host = socket.gethostname() if instance_host == "self" else instance_host
        with db.begin() as conn:
            conn.execute(
                heartbeats.insert().values(
                    service=service,
                    instance=f"{host}:1",
                    last_seen=datetime.now(UTC) - timedelta(seconds=age_s),
                    detail="{}",
                )
            )
    db.dispose()

    result = subprocess.run(
        python_check(service),
        env={**os.environ, "YIWANG_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode == 0) is healthy, f"{result.stdout}\n{result.stderr}"


class _Status(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the check result is what counts
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, True), (500, False), (None, False)])
def test_api_healthcheck_passes_when_the_api_answers_healthz(status: int | None, healthy: bool) -> None:
    handler = type("Handler", (_Status,), {"status": status or 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    if status is not None:
        thread.start()
    else:
        server.server_close()  # nothing listens: connection refused
    try:
        result = subprocess.run(
            python_check("api"),
            env={**os.environ, "YIWANG_HTTP_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    assert (result.returncode == 0) is healthy, f"{result.stdout}\n{result.stderr}"
