"""The thin path end to end, each part a separate process talking only MQTT, databases and HTTP.

Once on the embedded defaults (`yiwang up`: SQLite stores, embedded broker) and once on Mosquitto +
InfluxDB + PostgreSQL with each service started on its own, as in the compose stack.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.accounts import ensure_demo_operator
from broker.accounts import AccountStore, Credentials
from broker.mosquitto import mosquitto_binary
from common.db import make_engine
from ingest.deadletters import DeadLetter, DeadLetterStore
from tests.platform import (
    CONFIG_DIR,
    ApiClient,
    Service,
    child_pids,
    now_ms,
    pid_alive,
    read_credentials,
    wait_for,
)
from yiwang.servers import InfluxDatabase, free_port, start_mosquitto

pytestmark = pytest.mark.e2e
TOPIC = "yiwang/v1/zhuganxiang/gw-01/telemetry"


def flooding_payload(seq: int, level: float = 72) -> str:
    return json.dumps(
        {"seq": seq, "readings": [{"device": "wl-01", "ts": now_ms(), "values": {"level_cm": level}}]}
    )


def mosquitto_pub(
    port: int, payload: str, login: tuple[str, str] | None, topic: str = TOPIC, check: bool = True
) -> int:
    auth = ["-u", login[0], "-P", login[1]] if login else []
    argv = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), *auth, "-t", topic, "-q", "1", "-m", payload]
    return subprocess.run(argv, check=check, timeout=10, capture_output=True).returncode


def mqtt_login(credentials: Credentials | None) -> dict[str, str]:
    if credentials is None:
        return {}
    return {"YIWANG_MQTT_USERNAME": credentials.username, "YIWANG_MQTT_PASSWORD": credentials.password}


def open_flooding_cases(api: ApiClient) -> list[dict[str, object]]:
    items = api.get("/api/v1/cases", open="true", category="flooding")["items"]
    return [c for c in items if c["grid"] == "g-north"]


def dead_letters(database_url: str) -> list[DeadLetter]:
    db = make_engine(database_url)
    try:
        return DeadLetterStore(db).latest()
    finally:
        db.dispose()


def healthy(base_url: str) -> dict[str, object] | None:
    try:
        response = httpx.get(f"{base_url}/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    body: dict[str, object] = response.json()
    return body if response.status_code == 200 else None


@pytest.fixture
def platform_up(tmp_path: Path) -> Iterator[tuple[Service, int, int]]:
    """`yiwang up` on embedded defaults in an empty directory, without the simulated community."""
    http_port, mqtt_port = free_port(), free_port()
    env = {
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_MQTT_PORT": str(mqtt_port),
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
    }
    up = Service(["up", "--embedded-broker", "--no-simulate"], env, tmp_path, tmp_path / "up.log").start()
    try:
        yield up, http_port, mqtt_port
    finally:
        up.stop(signal.SIGINT)


def test_embedded_defaults_turn_an_external_reading_into_a_case(
    platform_up: tuple[Service, int, int], tmp_path: Path
) -> None:
    up, http_port, mqtt_port = platform_up
    base = f"http://127.0.0.1:{http_port}"
    health = wait_for(lambda: healthy(base), 60, f"a healthy platform; log:\n{up.log()}")
    assert set(health["components"]) == {"database", "series_store", "broker", "ingest", "alerts", "cases"}  # type: ignore[call-overload]
    assert "embedded amqtt" in up.log()
    credentials = read_credentials(tmp_path / "var/demo/credentials.json")
    assert set(credentials) == {
        "username",
        "password",
        "token",
        "mqtt_username",
        "mqtt_password",
        "accounts",
        "grid_worker",
        "open311_api_key",  # the demo's public reporting channel
    }
    # One login per other role, each a person of the organisation (the district operator is the demo's
    # own account above; tests/yiwang/test_users_demo.py signs in with them).
    assert set(credentials["accounts"]) == {
        "admin",
        "supervisor",
        "town_operator",
        "grid_worker",
        "building_head",
        "street_steward",
        "department_handler",
        "inspector",
    }
    login = (credentials["mqtt_username"], credentials["mqtt_password"])
    api = ApiClient(base, credentials["token"])
    try:
        assert httpx.get(f"{base}/api/v1/cases").status_code == 401
        assert open_flooding_cases(api) == []
        # The demo broker requires a login too: anonymous and wrong passwords are refused at connect.
        assert mosquitto_pub(mqtt_port, flooding_payload(seq=1), None, check=False) != 0
        assert mosquitto_pub(mqtt_port, flooding_payload(seq=1), (login[0], "wrong"), check=False) != 0

        mosquitto_pub(mqtt_port, "{not json", login)  # poison first: it must not block what follows
        mosquitto_pub(mqtt_port, flooding_payload(seq=1), login)
        [case] = wait_for(lambda: open_flooding_cases(api), 15, "a flooding case")
        assert case["state"] == "NEW" and case["deadline"] > case["opened_at"]  # type: ignore[operator]
        detail = api.get(f"/api/v1/cases/{case['id']}")
        assert detail["evidence"][0]["device"] == "wl-01"
        assert detail["evidence"][0]["observed"] == {"level_cm": 72}

        points = wait_for(
            lambda: api.get("/api/v1/devices/wl-01/telemetry")["points"], 10, "stored telemetry"
        )
        assert points[-1]["values"] == {"level_cm": 72.0}
    finally:
        api.close()
    [letter] = wait_for(lambda: dead_letters(f"sqlite:///{tmp_path}/var/demo/yiwang.db"), 10, "a dead letter")
    assert (letter.topic, letter.payload) == (TOPIC, b"{not json")
    assert letter.reason.startswith("not valid JSON")
    # ...and counted: ingest's heartbeat carries its counters to /healthz.
    wait_for(
        lambda: (h := healthy(base)) and h["components"]["ingest"]["stats"]["dead_letters"] == 1,
        15,
        "the count",
    )  # type: ignore[index]


def connections(log: str, gateway: str) -> int:
    """How often the simulator's ``gateway`` connected, from the publisher's log lines."""
    return log.count(f"gateway zhuganxiang/{gateway}: connected to ")


def test_mosquitto_demo_keeps_every_simulated_gateway_connected(tmp_path: Path) -> None:
    """The demo broker keys a session by its account: the simulator's gateways must not share one,
    or each connection would kick the other's and the gateways would flap between online and offline.
    The README's fleet login publishes beside them."""
    assert mosquitto_binary() is not None, "the e2e tests need Debian's mosquitto"
    http_port, mqtt_port = free_port(), free_port()
    env = {
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_MQTT_PORT": str(mqtt_port),
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
    }
    up = Service(["up"], env, tmp_path, tmp_path / "up.log").start()
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: healthy(base), 60, f"a healthy platform; log:\n{up.log()}")
        credentials = read_credentials(tmp_path / "var/demo/credentials.json")
        api = ApiClient(base, credentials["token"])
        try:

            def online() -> list[str] | None:
                gateways = api.get("/api/v1/gateways")["items"]
                return sorted(g["gateway"] for g in gateways) if all(g["online"] for g in gateways) else None

            assert wait_for(online, 30, f"every gateway online; log:\n{up.log()}") == ["gw-01", "gw-02"]
            # The README's login, used by a person while the simulator runs.
            login = (credentials["mqtt_username"], credentials["mqtt_password"])
            assert mosquitto_pub(mqtt_port, flooding_payload(seq=1), login, check=False) == 0
            wait_for(lambda: api.get("/api/v1/devices/th-0101/telemetry")["points"], 20, "simulated readings")
            time.sleep(5)  # several reconnect periods of the publisher (1 s at first)
            log = up.log()
            assert "Mosquitto (" in log
            assert [connections(log, gw) for gw in ("gw-01", "gw-02")] == [1, 1], (
                f"a gateway reconnected:\n{log}"
            )
            assert online() == ["gw-01", "gw-02"]
        finally:
            api.close()
    finally:
        assert up.stop(signal.SIGINT) == 0, up.log()
    assert "already connected" not in up.log()


def test_ctrl_c_stops_every_child(platform_up: tuple[Service, int, int]) -> None:
    up, http_port, _ = platform_up
    wait_for(lambda: healthy(f"http://127.0.0.1:{http_port}"), 60, "a healthy platform")
    children = child_pids(up.log())
    assert set(children) == {"broker", "ingest", "alerts", "cases", "api"}
    assert up.stop(signal.SIGINT) == 0
    assert [name for name, pid in children.items() if pid_alive(pid)] == []


@pytest.mark.integration
def test_real_stack_mosquitto_influxdb_postgresql(
    tmp_path: Path, influx_database: InfluxDatabase, postgres_url: str
) -> None:
    # Production-like: Mosquitto with no anonymous access, each process logging in with its own account.
    store = AccountStore(tmp_path / "accounts")
    logins = {name: store.add_service(name) for name in ("ingest", "alerts")}
    gateway = store.add_gateway("zhuganxiang", "gw-01")
    # The simulator logs each gateway in as itself: the broker keys a session by the account.
    simulated = {"gw-01": gateway, "gw-02": store.add_gateway("zhuganxiang", "gw-02")}
    sim_accounts = tmp_path / "sim-accounts.json"
    sim_accounts.write_text(
        json.dumps({gw: {"username": c.username, "password": c.password} for gw, c in simulated.items()})
    )
    mosquitto = start_mosquitto(base_dir=tmp_path / "broker", accounts_dir=store.directory)
    http_port = free_port()
    env = {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_DATABASE_URL": postgres_url,
        "YIWANG_SERIES_URL": influx_database.store_url,
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_SPOOL_DIR": str(tmp_path / "spool"),
        "YIWANG_INGEST_CLIENT_ID": f"ingest-{http_port}",
        "YIWANG_ALERTS_CLIENT_ID": f"alerts-{http_port}",
    }
    init = Service(["db", "init"], env, tmp_path, tmp_path / "db.log").start()
    assert init.proc is not None and init.proc.wait(60) == 0, init.log()
    services = [
        Service([name], {**env, **mqtt_login(logins.get(name))}, tmp_path, tmp_path / f"{name}.log").start()
        for name in ("ingest", "alerts", "cases", "api")  # cases needs no broker login
    ]
    edge: Service | None = None
    try:
        base = f"http://127.0.0.1:{http_port}"
        logs = lambda: "\n".join(s.log() for s in services)  # noqa: E731
        health = wait_for(lambda: healthy(base), 60, f"a healthy stack; logs:\n{logs()}")
        assert health["components"]["database"]["detail"] == "postgresql"  # type: ignore[index]
        assert health["components"]["series_store"]["detail"] == "InfluxStore"  # type: ignore[index]

        # The token comes from the same account tooling `yiwang up` uses, here against PostgreSQL.
        db = make_engine(postgres_url)
        token = ensure_demo_operator(db, tmp_path / "credentials.json")["token"]
        db.dispose()
        api = ApiClient(base, token)
        try:
            login = (gateway.username, gateway.password)
            mosquitto_pub(
                mosquitto.port,
                json.dumps(
                    {"seq": 1, "readings": [{"device": "ghost-9", "ts": now_ms(), "values": {"level_cm": 1}}]}
                ),
                login,
            )
            mosquitto_pub(mosquitto.port, flooding_payload(seq=2, level=88), login)
            [case] = wait_for(lambda: open_flooding_cases(api), 15, f"a flooding case; logs:\n{logs()}")
            assert api.get(f"/api/v1/cases/{case['id']}")["evidence"][0]["observed"] == {"level_cm": 88}
            points = wait_for(
                lambda: api.get("/api/v1/devices/wl-01/telemetry")["points"], 10, "telemetry in InfluxDB"
            )
            assert points[-1]["values"] == {"level_cm": 88.0}
            [letter] = wait_for(lambda: dead_letters(postgres_url), 10, "a dead letter")
            assert letter.reason == "readings.0.device: unknown device 'ghost-9' on gateway zhuganxiang/gw-01"

            # The simulated community feeds the same stack: its readings reach InfluxDB through ingest.
            edge_env = {**env, "YIWANG_SIM_ACCOUNTS_FILE": str(sim_accounts)}
            edge = Service(["edge", "simulate"], edge_env, tmp_path, tmp_path / "edge.log").start()
            wait_for(
                lambda: api.get("/api/v1/devices/th-0101/telemetry")["points"],
                30,
                f"simulated telemetry; {edge.log()}",
            )
        finally:
            api.close()
    finally:
        # Stop every process before judging any exit code, so a failure leaves no orphan behind.
        stopped = [(s, s.stop()) for s in ([edge] if edge else []) + services[::-1]]
        mosquitto.stop()
        assert [(s.args, code) for s, code in stopped if code != 0] == [], "\n".join(
            s.log() for s, _ in stopped
        )
