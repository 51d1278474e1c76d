"""`yiwang edge run` as a systemd service: notify/watchdog protocol, /metrics, clean SIGTERM."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import typer

from contract.messages import StateMessage, decode_message
from contract.topics import TopicKind
from edge.upgrade.restart import SYSTEMD_UNIT
from tests.edge.test_publisher import Subscriber, wait_for
from yiwang.cli import app
from yiwang.servers import MosquittoServer, free_port

SYSTEMD = Path(__file__).resolve().parents[2] / "edge" / "systemd"
UNIT = SYSTEMD / "yiwang-edge.service"
UPGRADE_UNIT = SYSTEMD / "yiwang-edge-upgrade@.service"
CONFIG = Path(__file__).resolve().parents[2] / "config"


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(path)
    return unit


def options_of(*command: str) -> set[str]:
    """The long options the real `yiwang` command accepts."""
    group: Any = typer.main.get_command(app)
    for name in command:
        group = group.commands[name]
    return {opt for param in group.params for opt in param.opts if opt.startswith("--")}


def used_options(line: str) -> set[str]:
    return {word for word in line.replace("\\\n", " ").split() if word.startswith("--")}


def test_unit_restarts_and_watches_the_agent() -> None:
    service = read_unit(UNIT)["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecStart"] == "/opt/yiwang/current/bin/yiwang edge run --config /etc/yiwang/gateway.yaml"
    assert service["StandardOutput"] == "journal"
    # The sandbox stays; only the data directory is writable, never the versions.
    assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/yiwang"
    assert service["NoNewPrivileges"] == "true" and service["User"] == "yiwang"


def test_every_start_recovers_first_outside_the_sandbox_falling_back_to_previous() -> None:
    pre = read_unit(UNIT)["Service"]["ExecStartPre"]
    # `+`: recovery rewrites /opt/yiwang, which ProtectSystem=strict and User=yiwang would refuse.
    assert pre.startswith("+/bin/sh -c '") and pre.endswith("'")
    first, fallback = pre.removeprefix("+/bin/sh -c '").removesuffix("'").split(" || ")
    assert first == "/opt/yiwang/current/bin/yiwang edge recover --prefix /opt/yiwang"
    assert fallback == "/opt/yiwang/previous/bin/yiwang edge recover --prefix /opt/yiwang"
    assert used_options(first) <= options_of("edge", "recover")


def test_the_upgrade_unit_writes_the_prefix_and_restarts_the_agent_unit() -> None:
    service = read_unit(UPGRADE_UNIT)["Service"]
    assert service["Type"] == "oneshot"
    assert service["ReadWritePaths"] == "/opt/yiwang" and service["ProtectSystem"] == "strict"
    assert "User" not in service  # root: it restarts yiwang-edge and writes /opt/yiwang
    assert service["EnvironmentFile"] == "/etc/yiwang/upgrade.env"
    command = service["ExecStart"]
    assert command.startswith("/opt/yiwang/current/bin/yiwang edge upgrade %I --prefix /opt/yiwang ")
    assert "--restart systemd" in command
    assert used_options(command) <= options_of("edge", "upgrade")
    # The unit the upgrade restarts is this one.
    assert UNIT.name == SYSTEMD_UNIT


def test_systemd_parses_both_units_without_a_word(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd's own parser is a test requirement (Debian's systemd, .ci/run)"
    prefix = tmp_path / "opt"
    for link in ("current", "previous"):
        (prefix / link / "bin").mkdir(parents=True)
        (prefix / link / "bin" / "yiwang").write_text("#!/bin/sh\n")
        (prefix / link / "bin" / "yiwang").chmod(0o755)
    names = {UNIT: UNIT.name, UPGRADE_UNIT: "yiwang-edge-upgrade@0.2.0.service"}
    for source, name in names.items():
        (tmp_path / name).write_text(source.read_text().replace("/opt/yiwang", str(prefix)))
        done = subprocess.run(
            [analyze, "verify", str(tmp_path / name)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.integration
def test_agent_notifies_pets_the_watchdog_serves_metrics_and_stops_cleanly(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    community = f"u-{uuid.uuid4().hex[:10]}"
    metrics_port = free_port()
    config = tmp_path / "gw.yaml"
    config.write_text(
        f"community: {community}\ngateway: gw-s\nconfig_dir: {CONFIG}\n"
        f"mqtt: {{host: {mosquitto.host}, port: {mosquitto.port}}}\n"
        f"spool: {{dir: {tmp_path / 'spool'}}}\nmetrics: {{port: {metrics_port}}}\n"
    )
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(30)
    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/gw-s/state")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "WATCHDOG_USEC": "600000",
        "YIWANG_LOG_LEVEL": "WARNING",
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "yiwang", "edge", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        received = []
        while "WATCHDOG=1" not in received:
            received.append(sock.recv(256).decode())
        assert received[0] == "READY=1"
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert f'yiwang_edge_spool_depth{{community="{community}",gateway="gw-s"}} 0.0' in metrics
        assert 'reason="downsampled"' in metrics
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
        while "STOPPING=1" not in received:
            received.append(sock.recv(256).decode())

        def last_state() -> StateMessage | None:
            states = [decode_message(TopicKind.STATE, p) for p, _ in sub.of_kind(TopicKind.STATE)]
            return states[-1] if states else None  # type: ignore[return-value]

        # The clean stop's retained state (with spool figures), not the broker's last will.
        wait_for(lambda: (s := last_state()) is not None and s.online is False and s.spool is not None)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        assert agent.stderr is not None
        agent.stderr.close()
        sock.close()
        sub.close()
