"""`yiwang edge run` as a systemd service: notify/watchdog protocol, /metrics, clean SIGTERM."""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from contract.messages import StateMessage, decode_message
from contract.topics import TopicKind
from tests.edge.test_publisher import Subscriber, wait_for
from yiwang.servers import MosquittoServer, free_port

UNIT = Path(__file__).resolve().parents[2] / "edge" / "systemd" / "yiwang-edge.service"
CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_unit_restarts_and_watches_the_agent() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert service["KillSignal"] == "SIGTERM"
    assert "yiwang edge run --config" in service["ExecStart"]
    assert service["StandardOutput"] == "journal"


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
