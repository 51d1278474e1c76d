"""The gateway's MQTT session over TLS: CA file, client certificate and per-gateway password, real Mosquitto."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.accounts import AccountStore
from broker.mosquitto import MosquittoConfig, TlsListener
from contract.messages import Reading
from contract.topics import TopicKind, subscription
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Spool
from tests.edge.test_publisher import Subscriber, decoded_telemetry, wait_for
from yiwang.servers import MOSQUITTO_BIN, MosquittoServer, free_port, start_mosquitto
from yiwang.servers import port_open as _port_open

pytestmark = pytest.mark.integration
T0 = 1_764_183_600_000


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(work: Path) -> None:
    """A throw-away CA, a server certificate for 127.0.0.1 and a gateway's client certificate."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=work)  # fmt: skip
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=work)  # fmt: skip
        (work / f"{name}.ext").write_text(extra + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=work)  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, int, Path]]:
    certs = tmp_path / "certs"
    certs.mkdir()
    _certificates(certs)
    tls_port = free_port()
    extra = (
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {certs / 'ca.pem'}\ncertfile {certs / 'server.pem'}\nkeyfile {certs / 'server.key'}\n"
        "require_certificate true\n"
    )
    broker = start_mosquitto(base_dir=tmp_path / "broker", extra_config=extra)
    yield broker, tls_port, certs
    broker.stop()


def _delivered(
    spool_path: Path, gateway: str, options: MqttOptions, sub: Subscriber, reading: Reading
) -> list[Reading]:
    """Publish one reading as ``gateway`` of community "tls"; the readings ``sub`` received (then closed)."""
    with Spool(spool_path) as spool:
        publisher = GatewayPublisher("tls", gateway, spool, [], options)
        try:
            publisher.start()
            wait_for(lambda: publisher.connected)
            publisher.publish_readings([reading])
            wait_for(lambda: spool.depth() == 0, publisher)
            wait_for(lambda: bool(decoded_telemetry(sub)))
        finally:
            publisher.stop()
            sub.close()
    return decoded_telemetry(sub)[0].readings


def test_publisher_connects_with_ca_and_client_certificate(
    tls_broker: tuple[MosquittoServer, int, Path], tmp_path: Path
) -> None:
    broker, tls_port, certs = tls_broker
    sub = Subscriber(broker.host, broker.port, subscription(TopicKind.TELEMETRY, community="tls"))
    options = MqttOptions(
        host="127.0.0.1",
        port=tls_port,
        tls_ca=str(certs / "ca.pem"),
        tls_cert=str(certs / "client.pem"),
        tls_key=str(certs / "client.key"),
    )
    reading = Reading(device="th-01", ts=T0, values={"t": 1.0})
    assert _delivered(tmp_path / "gw.sqlite3", "gw-t", options, sub, reading) == [reading]


def test_without_a_client_certificate_the_gateway_stays_offline_and_keeps_its_data(
    tls_broker: tuple[MosquittoServer, int, Path], tmp_path: Path
) -> None:
    _, tls_port, certs = tls_broker
    options = MqttOptions(host="127.0.0.1", port=tls_port, tls_ca=str(certs / "ca.pem"), reconnect_min_s=0.2)
    with Spool(tmp_path / "gw.sqlite3") as spool:
        publisher = GatewayPublisher("tls", "gw-u", spool, [], options)
        try:
            publisher.start()
            publisher.publish_readings([Reading(device="th-01", ts=T0, values={"t": 1.0})])
            wait_for(lambda: publisher._backoff.attempt >= 2)  # refused at least twice, retrying
            assert not publisher.connected
        finally:
            publisher.stop()
        assert spool.depth() == 1


def test_the_shipped_broker_config_serves_gateways_over_tls_with_their_accounts(tmp_path: Path) -> None:
    """broker/mosquitto.py's TLS listener as docs/operations.md sets it up: our CA, a server
    certificate, the gateway's password and ACL; plain MQTT stays on the loopback listener only."""
    certs = tmp_path / "certs"
    certs.mkdir()
    _certificates(certs)
    store = AccountStore(tmp_path / "accounts")
    gateway, service = store.add_gateway("tls", "gw-a"), store.add_service("ingest")
    plain_port, tls_port = free_port(), free_port()
    tls = TlsListener(
        tls_port, certs / "ca.pem", certs / "server.pem", certs / "server.key", host="127.0.0.1"
    )
    conf = MosquittoConfig(
        host="127.0.0.1",
        port=plain_port,
        data_dir=tmp_path / "mq",
        password_file=store.password_file,
        acl_file=store.acl_file,
        tls=tls,
    ).write(tmp_path / "mosquitto.conf")
    with (tmp_path / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen([MOSQUITTO_BIN, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _port_open("127.0.0.1", tls_port) or proc.poll() is not None)
        assert proc.poll() is None, (tmp_path / "mosquitto.log").read_text()
        sub = Subscriber(
            "127.0.0.1",
            plain_port,
            subscription(TopicKind.TELEMETRY, community="tls"),
            credentials=(service.username, service.password),
        )
        options = MqttOptions(
            host="127.0.0.1",
            port=tls_port,
            tls_ca=str(certs / "ca.pem"),
            username=gateway.username,
            password=gateway.password,
        )
        reading = Reading(device="th-01", ts=T0, values={"t": 2.0})
        assert _delivered(tmp_path / "gw.sqlite3", "gw-a", options, sub, reading) == [reading]
        # Plain MQTT on the TLS port does not even get a CONNACK.
        plain = subprocess.run(
            ["mosquitto_pub", "-p", str(tls_port), "-u", gateway.username, "-P", gateway.password,
             "-t", "yiwang/v1/tls/gw-a/telemetry", "-m", "{}"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert plain.returncode != 0
    finally:
        proc.terminate()
        proc.wait(10)
