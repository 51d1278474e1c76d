"""`yiwang edge doctor` against real ptys (socat), an AT modem emulator and a real Mosquitto."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from broker.accounts import AccountStore
from edge.doctor import (
    Check,
    check_broker,
    check_cameras,
    check_clock,
    check_devices,
    check_modem,
    check_serial_port,
    check_service_user,
    diagnose,
)
from edge.gateway_config import GatewayConfig
from tests.edge.sources.emulators import ModemEmulator, pty_pair
from yiwang.servers import MosquittoServer, free_port, start_mosquitto

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "config"


def gateway(tmp_path: Path, mqtt_port: int, **extra: object) -> dict[str, object]:
    return {
        "community": "c",
        "gateway": "g",
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "spool": {"dir": str(tmp_path / "spool")},
        **extra,
    }


def test_a_healthy_gateway_passes(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    with pty_pair() as modem_pty, pty_pair() as bus_pty, ModemEmulator(modem_pty.device):
        config = GatewayConfig.model_validate(
            gateway(
                tmp_path,
                mosquitto.port,
                buses=[
                    {
                        "id": "rs485",
                        "kind": "modbus_rtu",
                        "port": bus_pty.gateway,
                        "devices": [{"id": "th-1", "type": "env.th@1", "unit": 1}],
                    }
                ],
                modem={"port": modem_pty.gateway, "timeout_s": 2},
            )
        )
        checks = {c.name: c for c in diagnose(config)}
    assert checks["bus rs485"].outcome == "ok"
    assert checks["modem"].outcome == "ok" and "answers AT+CSQ" in checks["modem"].detail
    assert checks["broker"].outcome == "ok" and checks["spool"].outcome == "ok"
    assert checks["clock"].outcome in ("ok", "warn")  # a container may not run NTP


def test_problems_are_named_with_what_to_do(tmp_path: Path) -> None:
    config = GatewayConfig.model_validate(
        gateway(
            tmp_path,
            free_port(),
            buses=[
                {
                    "id": "rs485",
                    "kind": "modbus_rtu",
                    "port": "/dev/ttyNOPE9",
                    "devices": [{"id": "th-1", "type": "env.th@1", "unit": 1}],
                }
            ],
        )
        | {"mqtt": {"host": "127.0.0.1", "port": free_port(), "tls_ca": str(tmp_path / "missing-ca.pem")}}
    )
    checks = {c.name: c for c in diagnose(config)}
    assert checks["bus rs485"].outcome == "fail" and "plugged in" in checks["bus rs485"].detail
    assert checks["broker"].outcome == "fail" and "unreachable" in checks["broker"].detail
    assert checks["TLS CA"].outcome == "fail" and "missing-ca.pem is missing" in checks["TLS CA"].detail


def test_a_hung_modem_and_an_unreadable_port(tmp_path: Path) -> None:
    with pty_pair() as modem_pty, ModemEmulator(modem_pty.device) as modem:
        modem.silent = True
        result = check_modem(modem_pty.gateway, 115200, timeout=0.5)
    assert result.outcome == "fail" and "did not answer AT+CSQ" in result.detail
    locked = tmp_path / "ttyLOCKED"
    locked.write_text("")
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads anything: the rights check cannot fail here
        assert check_serial_port("bus", str(locked)).outcome == "ok"
    else:
        assert "dialout" in check_serial_port("bus", str(locked)).detail


def test_cli_exits_non_zero_when_something_fails(tmp_path: Path) -> None:
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(gateway(tmp_path, free_port())))
    result = subprocess.run(
        [sys.executable, "-m", "yiwang", "edge", "doctor", "--config", str(tmp_path / "gw.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "FAIL  broker" in result.stdout and "OK    spool" in result.stdout


def test_camera_sources_are_checked_one_by_one(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as stream:
        port = stream.getsockname()[1]
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(b"\x00")
        cameras = tmp_path / "cameras.yaml"
        sources = [
            f"rtsp://127.0.0.1:{port}/s",
            f"rtsp://127.0.0.1:{free_port()}/s",
            97,
            str(clip),
            "nothing",
        ]
        cameras.write_text(
            yaml.safe_dump(
                {
                    "community": "c",
                    "gateway": "g",
                    "cameras": [{"id": f"cam-{n}", "source": s} for n, s in enumerate(sources)],
                }
            )
        )
        config = GatewayConfig.model_validate(gateway(tmp_path, free_port(), cameras=str(cameras)))
        checks = {c.name: c for c in diagnose(config)}
    assert checks["cameras"].outcome == "ok" and "5 camera(s)" in checks["cameras"].detail
    assert (
        checks["camera cam-0"].outcome == "ok"
        and f"127.0.0.1:{port} reachable" in checks["camera cam-0"].detail
    )
    assert checks["camera cam-1"].outcome == "fail" and "unreachable" in checks["camera cam-1"].detail
    assert (
        checks["camera cam-2"].outcome == "fail"
        and "/dev/video97 does not exist" in checks["camera cam-2"].detail
    )
    assert checks["camera cam-3"].outcome == "ok"
    assert (
        checks["camera cam-4"].outcome == "fail" and "neither a stream URL" in checks["camera cam-4"].detail
    )


def test_a_camera_file_that_does_not_validate_is_named(tmp_path: Path) -> None:
    (tmp_path / "cameras.yaml").write_text("community: c\ngateway: g\ncameras: []\n")
    checks, devices = check_cameras(tmp_path / "cameras.yaml")
    assert [c.outcome for c in checks] == ["fail"] and "cameras.yaml" in checks[0].detail and devices == []
    missing, _ = check_cameras(tmp_path / "none.yaml")
    assert missing[0].outcome == "fail" and "missing" in missing[0].detail


def test_the_service_users_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    mine = grp.getgrgid(os.getgid()).gr_name
    assert check_service_user(me, {mine}).outcome == "ok"
    lacking = check_service_user(me, {mine, "yiwang-no-such-group"})
    assert lacking.outcome == "fail" and f"usermod -aG yiwang-no-such-group {me}" in lacking.detail
    nobody = check_service_user("yiwang-no-such-user", {"dialout"})
    assert nobody.outcome == "fail" and "install-edge.sh" in nobody.detail

    # Named through the environment, the user's groups are checked for what the gateway file uses.
    monkeypatch.setenv("YIWANG_EDGE_USER", "yiwang-no-such-user")
    bus = {"id": "rs485", "kind": "modbus_rtu", "port": "/dev/ttyNOPE9"}
    bus["devices"] = [{"id": "th-1", "type": "env.th@1", "unit": 1}]
    config = GatewayConfig.model_validate(gateway(tmp_path, free_port(), buses=[bus]))
    checks = {c.name: c for c in diagnose(config)}
    assert checks["service user"].outcome == "fail" and "--groups dialout" in checks["service user"].detail


def test_a_clock_that_was_never_set_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 86400.0)  # 1970-01-02: a Pi booted without NTP or RTC
    result = check_clock()
    assert result.outcome == "fail" and "1970-01-02" in result.detail and "set-ntp" in result.detail


def test_devices_are_checked_against_the_sensor_types(tmp_path: Path) -> None:
    bus = {"id": "rs485", "kind": "modbus_rtu", "port": "/dev/ttyNOPE9"}
    bus["devices"] = [{"id": "th-1", "type": "env.no_such_type@1", "unit": 1}]
    unknown = GatewayConfig.model_validate(gateway(tmp_path, free_port(), buses=[bus]))
    result = check_devices(unknown)
    assert result.outcome == "fail" and "unknown sensor type 'env.no_such_type@1'" in result.detail
    empty = GatewayConfig.model_validate(gateway(tmp_path, free_port(), config_dir=str(tmp_path)))
    result = check_devices(empty)
    assert result.outcome == "fail" and f"no sensor types in {tmp_path}" in result.detail
    bus["devices"] = [{"id": "th-1", "type": "env.th@1", "unit": 1}]
    known = GatewayConfig.model_validate(gateway(tmp_path, free_port(), buses=[bus], config_dir=str(CONFIG)))
    assert check_devices(known).outcome == "ok"


@pytest.fixture
def secured_mosquitto(tmp_path: Path) -> Iterator[tuple[MosquittoServer, Path, str]]:
    """Mosquitto with our accounts and ACL; the password of gateway c/g in a file, as installed."""
    store = AccountStore(tmp_path / "accounts")
    login = store.add_gateway("c", "g")
    password_file = tmp_path / "mqtt.password"
    password_file.write_text(login.password + "\n", encoding="utf-8")
    server = start_mosquitto(base_dir=tmp_path, accounts_dir=store.directory)
    try:
        yield server, password_file, login.username
    finally:
        server.stop()


def _login_checks(tmp_path: Path, port: int, password_file: Path, **identity: str) -> dict[str, Check]:
    mqtt = {"host": "127.0.0.1", "port": port, "username": "gw.c.g", "password_file": str(password_file)}
    config = GatewayConfig.model_validate({**gateway(tmp_path, port), "mqtt": mqtt, **identity})
    return {c.name: c for c in check_broker(config)}


def test_the_broker_login_and_the_acl_are_checked(
    secured_mosquitto: tuple[MosquittoServer, Path, str], tmp_path: Path
) -> None:
    server, password_file, _ = secured_mosquitto
    checks = _login_checks(tmp_path, server.port, password_file)
    assert checks["broker login"].outcome == "ok", checks
    assert checks["broker ACL"].outcome == "ok"
    assert "may publish to yiwang/v1/c/g/devices" in checks["broker ACL"].detail


def test_a_wrong_password_is_reported_in_words(
    secured_mosquitto: tuple[MosquittoServer, Path, str], tmp_path: Path
) -> None:
    server, _, _ = secured_mosquitto
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    checks = _login_checks(tmp_path, server.port, wrong)
    assert checks["broker"].outcome == "ok"  # the port answers: only the login shows the problem
    login = checks["broker login"]
    assert login.outcome == "fail"
    assert "the broker refused gw.c.g" in login.detail and "wrong password" in login.detail
    assert "broker ACL" not in checks


def test_a_topic_the_acl_denies_is_reported_in_words(
    secured_mosquitto: tuple[MosquittoServer, Path, str], tmp_path: Path
) -> None:
    """The account of gateway c/g in the file of gateway c/h: it logs in, but may not publish as h."""
    server, password_file, _ = secured_mosquitto
    checks = _login_checks(tmp_path, server.port, password_file, gateway="h")
    assert checks["broker login"].outcome == "ok"
    acl = checks["broker ACL"]
    assert acl.outcome == "fail"
    assert "refused gw.c.g publishing to yiwang/v1/c/h/devices" in acl.detail
    assert "Not authorized" in acl.detail and "another gateway" in acl.detail
