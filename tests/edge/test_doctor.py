"""`yiwang edge doctor` against real ptys (socat), an AT modem emulator and a real Mosquitto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.doctor import check_modem, check_serial_port, diagnose
from edge.gateway_config import GatewayConfig
from tests.edge.sources.emulators import ModemEmulator, pty_pair
from tests.servers import MosquittoServer, free_port

pytestmark = pytest.mark.integration


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
