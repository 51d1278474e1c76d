"""Per-gateway credentials and ACL against a real Mosquitto with password_file + acl_file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from broker.accounts import AccountError, AccountStore, Credentials, acl_for, check_password, hash_password
from broker.mosquitto import MosquittoConfig
from contract.messages import Reading
from edge.gateway_config import GatewayConfig
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Spool
from yiwang.cli import app
from yiwang.servers import HOST, MOSQUITTO_BIN, free_port
from yiwang.servers import port_open as _port_open

T0 = 1_764_183_600_000


def test_hash_round_trip_and_format() -> None:
    hashed = hash_password("s3cret", salt=b"\0" * 12)
    assert hashed.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert check_password("s3cret", hashed)
    assert not check_password("wrong", hashed)
    assert not check_password("s3cret", "garbage")


def test_acl_lines_by_role() -> None:
    assert acl_for("gw.c1.gw-a") == [
        "topic write yiwang/v1/c1/gw-a/telemetry",
        "topic write yiwang/v1/c1/gw-a/event",
        "topic write yiwang/v1/c1/gw-a/state",
        "topic write yiwang/v1/c1/gw-a/devices",
        "topic read yiwang/v1/c1/gw-a/config",
        "topic read yiwang/v1/c1/gw-a/version",
    ]
    assert acl_for("svc.ingest") == ["topic read yiwang/v1/#"]
    assert acl_for("fleet.c1") == [
        "topic write yiwang/v1/c1/+/telemetry",
        "topic write yiwang/v1/c1/+/event",
        "topic write yiwang/v1/c1/+/state",
        "topic write yiwang/v1/c1/+/devices",
        "topic read yiwang/v1/c1/+/config",
        "topic read yiwang/v1/c1/+/version",
    ]
    assert acl_for("fleet.C1 bad") == []
    assert acl_for("someone") == []


def test_store_refuses_bad_ids_and_duplicates(tmp_path: Path) -> None:
    store = AccountStore(tmp_path)
    store.add_gateway("c1", "gw-a")
    with pytest.raises(AccountError, match="exists already"):
        store.add_gateway("c1", "gw-a")
    with pytest.raises(AccountError, match="invalid gateway id 'GW A'"):
        store.add_gateway("c1", "GW A")
    rotated = store.add_gateway("c1", "gw-a", rotate=True)
    assert store.verify(rotated.username, rotated.password)
    assert store.usernames() == ["gw.c1.gw-a"]
    assert (tmp_path / "passwd").stat().st_mode & 0o077 == 0


def test_cli_gateway_add_prints_a_ready_config(tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "gateway",
        "add",
        "zhuganxiang",
        "gw-09",
        "--accounts-dir",
        str(tmp_path),
        "--host",
        "mq.example.org",
        # The registry lives on another server here: only the broker account is made.
        "--account-only",
        "--out-dir",
        str(tmp_path / "credentials"),
    ]
    result = runner.invoke(app, [*args, "--port", "8883", "--tls-ca", "/etc/yiwang/ca.pem"])
    assert result.exit_code == 0, result.output
    config = GatewayConfig.model_validate(yaml.safe_load(result.stdout))
    assert (config.community, config.gateway, config.mqtt.username) == (
        "zhuganxiang",
        "gw-09",
        "gw.zhuganxiang.gw-09",
    )
    assert config.mqtt.tls_ca == Path("/etc/yiwang/ca.pem")
    password = (tmp_path / "credentials" / "zhuganxiang.gw-09.password").read_text().strip()
    assert AccountStore(tmp_path).verify("gw.zhuganxiang.gw-09", password)
    acl = (tmp_path / "acl").read_text()
    assert "topic write yiwang/v1/zhuganxiang/gw-09/telemetry" in acl
    assert "topic write yiwang/v1/zhuganxiang/gw-09/config" not in acl
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "exists already" in again.output


@pytest.fixture(params=["mosquitto", "amqtt"])
def secured_broker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[int, dict[str, Credentials]]]:
    """The same account store enforced by Mosquitto (production) and the embedded broker (demo)."""
    store = AccountStore(tmp_path / "accounts")
    accounts = {
        "a": store.add_gateway("c1", "gw-a"),
        "b": store.add_gateway("c1", "gw-b"),
        "other": store.add_gateway("c2", "gw-a"),
        "fleet": store.add_fleet("c1"),
        "ingest": store.add_service("ingest"),
        "admin": store.add_service("api", admin=True),
    }
    port = free_port()
    if request.param == "amqtt":
        argv = [
            sys.executable,
            "-m",
            "yiwang",
            "broker",
            "--embedded",
            "--accounts-dir",
            str(store.directory),
        ]
        env = {**os.environ, "YIWANG_MQTT_PORT": str(port)}
        log_path = tmp_path / "amqtt.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    else:
        conf = MosquittoConfig(
            host=HOST,
            port=port,
            data_dir=tmp_path / "mq",
            password_file=store.password_file,
            acl_file=store.acl_file,
        ).write(tmp_path / "mosquitto.conf")
        log_path = tmp_path / "mosquitto.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([MOSQUITTO_BIN, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _port_open(HOST, port):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"{request.param} did not start"
            time.sleep(0.05)
        yield port, accounts
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    """A paho client logged in as one account, recording what it receives."""

    def __init__(self, port: int, creds: Credentials, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connack = threading.Event()
        self.refused: str | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(creds.username, password if password is not None else creds.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.subacks: set[int] = set()
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.add(mid)
        self.client.connect(HOST, port)
        self.client.loop_start()
        assert self.connack.wait(10), "no CONNACK"

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if reason.is_failure:  # type: ignore[attr-defined]
            self.refused = str(reason)
            client.disconnect()
        self.connack.set()

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the SUBACK: a message published before it would be missed."""
        _, mid = self.client.subscribe(topic, qos=1)
        wait_until(lambda: mid in self.subacks)

    def topics(self) -> list[str]:
        return [t for t, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.integration
def test_wrong_password_is_refused(secured_broker: tuple[int, dict[str, Credentials]]) -> None:
    port, accounts = secured_broker
    client = Client(port, accounts["a"], password="not-the-password")
    client.close()
    assert client.refused is not None


@pytest.mark.integration
def test_a_gateway_publishes_only_under_its_own_topics(
    secured_broker: tuple[int, dict[str, Credentials]],
) -> None:
    port, accounts = secured_broker
    service = Client(port, accounts["ingest"])
    service.subscribe("yiwang/v1/#")
    gateway = Client(port, accounts["a"])
    try:
        time.sleep(0.2)  # let the subscription settle before publishing
        forged = [
            "yiwang/v1/c1/gw-b/telemetry",
            "yiwang/v1/c2/gw-a/telemetry",
            "yiwang/v1/c1/gw-b/config",
            "yiwang/v1/c1/gw-a/config",  # not even its own desired config
            "yiwang/v1/c1/gw-a/anything",
        ]
        for topic in forged:
            gateway.client.publish(topic, b'{"seq": 1}', qos=1).wait_for_publish(5)
        # Same connection, same order: once the allowed message arrived, a forged one would have too.
        gateway.client.publish("yiwang/v1/c1/gw-a/telemetry", b'{"seq": 2}', qos=1).wait_for_publish(5)
        wait_until(lambda: "yiwang/v1/c1/gw-a/telemetry" in service.topics())
    finally:
        gateway.close()
        service.close()
    assert service.topics() == ["yiwang/v1/c1/gw-a/telemetry"]


@pytest.mark.integration
def test_anonymous_connect_is_refused(secured_broker: tuple[int, dict[str, Credentials]]) -> None:
    port, _ = secured_broker
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    refused = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: reason.is_failure and refused.set()
    client.connect(HOST, port)
    client.loop_start()
    try:
        assert refused.wait(10), "an anonymous client was let in"
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.integration
def test_a_fleet_account_publishes_for_its_community_only(
    secured_broker: tuple[int, dict[str, Credentials]],
) -> None:
    port, accounts = secured_broker
    service = Client(port, accounts["ingest"])
    service.subscribe("yiwang/v1/#")
    fleet = Client(port, accounts["fleet"])
    try:
        time.sleep(0.2)
        for topic in ("yiwang/v1/c2/gw-a/telemetry", "yiwang/v1/c1/gw-b/config", "yiwang/v1/c1/x/y/z"):
            fleet.client.publish(topic, b'{"seq": 1}', qos=1).wait_for_publish(5)
        for topic in ("yiwang/v1/c1/gw-a/telemetry", "yiwang/v1/c1/gw-b/event"):
            fleet.client.publish(topic, b'{"seq": 2}', qos=1).wait_for_publish(5)
        wait_until(lambda: "yiwang/v1/c1/gw-b/event" in service.topics())
    finally:
        fleet.close()
        service.close()
    assert service.topics() == ["yiwang/v1/c1/gw-a/telemetry", "yiwang/v1/c1/gw-b/event"]


@pytest.mark.integration
def test_a_gateway_reads_only_its_own_config(secured_broker: tuple[int, dict[str, Credentials]]) -> None:
    port, accounts = secured_broker
    admin = Client(port, accounts["admin"])
    for gw in ("gw-a", "gw-b"):
        admin.client.publish(
            f"yiwang/v1/c1/{gw}/config", f'{{"for": "{gw}"}}', qos=1, retain=True
        ).wait_for_publish(5)
    admin.close()
    gateway = Client(port, accounts["a"])
    try:
        gateway.client.subscribe([("yiwang/v1/c1/gw-b/config", 1), ("yiwang/v1/c1/gw-a/config", 1)])
        wait_until(lambda: "yiwang/v1/c1/gw-a/config" in gateway.topics())
        gateway.client.subscribe("yiwang/v1/#", qos=1)  # a wildcard does not open other gateways either
        time.sleep(0.5)
    finally:
        gateway.close()
    assert set(gateway.topics()) == {"yiwang/v1/c1/gw-a/config"}


@pytest.mark.integration
def test_the_edge_publisher_works_with_its_provisioned_account(
    secured_broker: tuple[int, dict[str, Credentials]], tmp_path: Path
) -> None:
    port, accounts = secured_broker
    service = Client(port, accounts["ingest"])
    service.subscribe("yiwang/v1/#")
    creds = accounts["a"]
    with Spool(tmp_path / "gw.sqlite3") as spool:
        options = MqttOptions(port=port, username=creds.username, password=creds.password)
        publisher = GatewayPublisher("c1", "gw-a", spool, [], options)
        try:
            publisher.start()
            publisher.publish_readings([Reading(device="th-01", ts=T0, values={"t": 1.5})])

            def delivered() -> bool:
                publisher.pump()  # the agent's loop pumps the spool every tick; here the test does
                return spool.depth() == 0 and "yiwang/v1/c1/gw-a/telemetry" in service.topics()

            wait_until(delivered)
        finally:
            publisher.stop()
            service.close()
    assert {"yiwang/v1/c1/gw-a/state", "yiwang/v1/c1/gw-a/telemetry"} <= set(service.topics())
