"""`yiwang gateway add` closes the loop: registry row, broker account, the gateway's files, broker reloaded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from broker.accounts import AccountStore
from common.db import make_engine
from edge.gateway_config import GatewayConfig
from registry import editing
from registry.models import RegistryGateway
from tests.platform import wait_for
from tests.registry.conftest import CONFIG
from yiwang.cli import app
from yiwang.servers import MosquittoServer, start_mosquitto

pytestmark = pytest.mark.integration


def logs_in(port: int, username: str, password: str) -> bool:
    """One MQTT 5 login; True when the broker accepts it."""
    answered, accepted = threading.Event(), []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        accepted.append(not reason.is_failure)
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return answered.wait(5) and accepted[0]
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[dict[str, str], AccountStore, MosquittoServer]]:
    """A seeded registry and a Mosquitto reading an account store that has a service account."""
    env = {"YIWANG_DATABASE_URL": f"sqlite:///{tmp_path}/y.db", "YIWANG_CONFIG_DIR": str(CONFIG)}
    seeded = CliRunner().invoke(app, ["registry", "import", str(CONFIG / "communities")], env=env)
    assert seeded.exit_code == 0, seeded.output
    store = AccountStore(tmp_path / "accounts")
    store.add_service("ingest")
    broker = start_mosquitto(base_dir=tmp_path, accounts_dir=store.directory)
    try:
        yield env, store, broker
    finally:
        broker.stop()


def _add(env: dict[str, str], store: AccountStore, port: int, out: Path, *args: str) -> Any:
    argv = ["gateway", "add", *args, "--accounts-dir", str(store.directory), "--out-dir", str(out)]
    return CliRunner().invoke(app, [*argv, "--port", str(port)], env=env)


def _gateways(env: dict[str, str]) -> dict[tuple[str, str], str]:
    db: Engine = make_engine(env["YIWANG_DATABASE_URL"])
    try:
        with Session(db) as session:
            return {(g.community_id, g.id): g.name for g in session.query(RegistryGateway)}
    finally:
        db.dispose()


def test_a_new_gateway_is_registered_and_logs_in_without_a_manual_reload(
    server: tuple[dict[str, str], AccountStore, MosquittoServer], tmp_path: Path
) -> None:
    env, store, broker = server
    result = _add(env, store, broker.port, tmp_path, "zhuganxiang", "gw-09", "--name", "北院网关")
    assert result.exit_code == 0, result.output
    assert _gateways(env)[("zhuganxiang", "gw-09")] == "北院网关"
    password_file = tmp_path / "zhuganxiang.gw-09.password"  # the README's --password-file
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text(encoding="utf-8").strip()
    assert store.verify("gw.zhuganxiang.gw-09", password)
    config = GatewayConfig.model_validate(yaml.safe_load(result.stdout))
    assert (config.community, config.gateway, config.mqtt.port) == ("zhuganxiang", "gw-09", broker.port)
    assert "registered; account gw.zhuganxiang.gw-09" in result.stderr
    assert "Mosquitto (pid" in result.stderr and "reloaded its accounts" in result.stderr
    assert f"--password-file {password_file}" in result.stderr
    wait_for(lambda: logs_in(broker.port, "gw.zhuganxiang.gw-09", password), 10, "the new login accepted")


def test_a_gateway_registered_in_the_console_gets_its_account(
    server: tuple[dict[str, str], AccountStore, MosquittoServer], tmp_path: Path
) -> None:
    env, store, broker = server
    db = make_engine(env["YIWANG_DATABASE_URL"])
    with Session(db) as session, session.begin():
        editing.add_gateway(session, "zhuganxiang", {"id": "gw-10", "name": "南院"})
    db.dispose()
    result = _add(env, store, broker.port, tmp_path, "zhuganxiang", "gw-10")
    assert result.exit_code == 0, result.output
    assert "zhuganxiang/gw-10 already in the registry" in result.stderr
    assert _gateways(env)[("zhuganxiang", "gw-10")] == "南院"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nowhere", "gw-09"), "community: 'nowhere' is not in the registry"),
        (("zhuganxiang", "GW 9"), "invalid gateway id 'GW 9'"),
    ],
)
def test_a_refused_gateway_writes_nothing(
    server: tuple[dict[str, str], AccountStore, MosquittoServer],
    tmp_path: Path,
    args: tuple[str, str],
    message: str,
) -> None:
    env, store, broker = server
    before = store.password_file.read_bytes()
    result = _add(env, store, broker.port, tmp_path, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert store.password_file.read_bytes() == before
    assert not list(tmp_path.glob("*.password"))


def test_a_gateway_id_of_another_community_is_refused(
    server: tuple[dict[str, str], AccountStore, MosquittoServer], tmp_path: Path
) -> None:
    env, store, broker = server
    first = _add(env, store, broker.port, tmp_path / "a", "zhuganxiang", "gw-11")
    assert first.exit_code == 0, first.output
    db = make_engine(env["YIWANG_DATABASE_URL"])
    with Session(db) as session, session.begin():
        editing.add_community(session, {"id": "liuxing", "name": "柳行社区", "town": "yuehe"})
    db.dispose()
    again = _add(env, store, broker.port, tmp_path / "b", "liuxing", "gw-11")
    assert again.exit_code == 2
    assert "gateway 'gw-11' is already registered in community zhuganxiang" in again.stderr
