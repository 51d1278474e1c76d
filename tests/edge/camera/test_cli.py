"""`yiwang edge camera --config` as a process: a video file in, contract events on Mosquitto out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edge.camera.synthetic import FIRE_LANE, Scenario, walk_in
from tests.edge.camera.subscriber import EventSubscriber
from tests.edge.camera.test_source import wait_for
from yiwang.cli import app
from yiwang.servers import MosquittoServer

ROOT = Path(__file__).resolve().parents[3]


def test_an_invalid_config_is_refused_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("community: c\ngateway: g\ncameras: [{id: cam-01, source: x, zonez: []}]\n")
    result = CliRunner().invoke(app, ["edge", "camera", "--config", str(path)])
    assert result.exit_code == 2
    assert "zonez" in result.output
    assert str(path) in result.output


@pytest.mark.integration
def test_edge_camera_publishes_a_file_camera_and_stops_cleanly(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    community = f"t-{uuid.uuid4().hex[:10]}"
    clip = Scenario("short", 7.0, walk_in([(2.0, 3.5)])).write(tmp_path / "clip.avi")
    config = {
        "community": community,
        "gateway": "gw-01",
        "spool": str(tmp_path / "spool.sqlite3"),
        "http": {"port": 0},
        "cameras": [
            {
                "id": "cam-01",
                "source": str(clip),
                "tamper": {"warmup_s": 0.5},
                "zones": [
                    {"id": "fire-lane", "polygon": FIRE_LANE, "min_duration_s": 0.5, "cooldown_s": 1.0}
                ],
            }
        ],
    }
    (tmp_path / "cams.yaml").write_text(yaml.safe_dump(config))
    sub = EventSubscriber(mosquitto.host, mosquitto.port, community)
    env = os.environ | {"YIWANG_MQTT_PORT": str(mosquitto.port), "YIWANG_MQTT_HOST": mosquitto.host}
    process = subprocess.Popen(
        [sys.executable, "-m", "yiwang", "edge", "camera", "--config", str(tmp_path / "cams.yaml")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def events() -> list[tuple[str, str]]:
            return [(e.kind, e.phase) for m in sub.messages() for e in m.events]

        wait_for(lambda: ("camera.motion", "end") in events(), timeout=30, what="motion end from the CLI")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        sub.close()
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    assert events() == [("camera.motion", "start"), ("camera.motion", "end")]
