"""The gateway's camera service end to end: MJPEG stream → analysis → spool → real Mosquitto, with
health on /metrics and the snapshot fetched by the reference the event carries."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from contract.messages import EventMessage
from edge.camera.config import GatewayCameras, load_config
from edge.camera.masks import Image
from edge.camera.runtime import CameraRuntime
from edge.camera.synthetic import FIRE_LANE, background, walk_in
from edge.publisher import GatewayPublisher, MqttOptions
from edge.spool import Spool
from tests.edge.camera.mjpeg import MjpegServer
from tests.edge.camera.subscriber import EventSubscriber
from tests.edge.camera.test_source import wait_for
from yiwang.servers import MosquittoServer, free_port

pytestmark = pytest.mark.integration

TOKEN = "operator-token-for-tests"
CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


def walking_scene() -> Callable[[float], Image]:
    """Live: the shape walks into the fire lane 3 s after the stream starts and out at 5 s."""
    scene, render = background(), walk_in([(3.0, 5.0)])
    rng = np.random.default_rng(5)

    def frame(t: float) -> Image:
        noisy = render(scene.copy(), t) + rng.normal(0, 2, scene.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    return frame


def gateway_config(tmp_path: Path, url: str, community: str) -> GatewayCameras:
    return GatewayCameras.model_validate(
        {
            "community": community,
            "gateway": "gw-01",
            "spool": tmp_path / "spool.sqlite3",
            "http": {"port": 0, "snapshot_token": TOKEN},
            "cameras": [
                {
                    "id": "cam-01",
                    "source": url,
                    "max_fps": 15,
                    "reconnect_min_s": 0.2,
                    "reconnect_max_s": 0.5,
                    "read_timeout_s": 1.0,
                    "tamper": {"warmup_s": 0.5},
                    "zones": [
                        {"id": "fire-lane", "polygon": FIRE_LANE, "min_duration_s": 0.5, "cooldown_s": 1.5}
                    ],
                    "snapshots": {"enabled": True, "directory": tmp_path / "snapshots"},
                }
            ],
        }
    )


def test_zone_incident_reaches_the_broker_with_a_fetchable_snapshot(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    community = f"t-{uuid.uuid4().hex[:10]}"
    stream = MjpegServer(walking_scene(), fps=15)
    sub = EventSubscriber(mosquitto.host, mosquitto.port, community)
    runtime = CameraRuntime(
        gateway_config(tmp_path, stream.url, community),
        MqttOptions(host=mosquitto.host, port=mosquitto.port, reconnect_min_s=1, reconnect_max_s=2),
    )
    runtime.start()
    try:

        def received() -> list[EventMessage]:
            return sub.messages()

        def phases() -> list[str]:
            return [e.phase for m in received() for e in m.events]

        wait_for(lambda: phases() == ["start", "end"], timeout=20, what="start and end on the broker")
        health = runtime.health()["cam-01"]
        assert health["connected"] is True
        assert isinstance(health["fps"], float) and health["fps"] > 5
        assert isinstance(health["dropped"], int)
        age = health["last_frame_age_s"]
        assert isinstance(age, float) and age < 1.0

        base = f"http://127.0.0.1:{runtime.http.port}"
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        for family in ("fps", "dropped_frames_total", "last_frame_age_seconds", "frames_total"):
            assert f'yiwang_camera_{family}{{camera="cam-01"}}' in metrics

        start, end = (e for m in received() for e in m.events)
        assert (start.kind, end.kind) == ("camera.motion", "camera.motion")
        assert start.id == end.id
        assert start.attrs["zone"] == end.attrs["zone"] == "fire-lane"
        assert start.device == "cam-01"
        reference = start.attrs["snapshot"]
        assert isinstance(reference, str)
        assert "snapshot" not in end.attrs
        jpeg = httpx.get(
            f"{base}/snapshots/{reference}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert jpeg.status_code == 200
        assert hashlib.sha256(jpeg.content).hexdigest() == start.attrs["snapshot_sha256"]
    finally:
        runtime.stop()
        stream.close()
        sub.close()
    # Everything published was acknowledged and left the spool; nothing more came after the end.
    assert phases() == ["start", "end"]


def test_example_config_loads() -> None:
    config = load_config(CONFIG_DIR / "cameras" / "example.yaml")
    assert config.cameras[0].snapshots.enabled is False
    assert any(z.id == "fire-lane" for c in config.cameras for z in c.zones)


def test_embedded_in_the_agent_events_go_to_the_agents_spool(tmp_path: Path) -> None:
    # No broker: the agent's publisher is not connected, so what the cameras emit waits in its spool.
    config = GatewayCameras.model_validate(
        {
            "community": "c-1",
            "gateway": "gw-01",
            "spool": tmp_path / "unused.sqlite3",
            "http": {"port": 0},
            "cameras": [
                {"id": "cam-07", "source": f"http://127.0.0.1:{free_port()}/x", "stream_timeout_s": 0.5}
            ],
        }
    )
    with Spool(tmp_path / "agent.sqlite3") as spool:
        publisher = GatewayPublisher("c-1", "gw-01", spool, [], MqttOptions(port=free_port()))
        runtime = CameraRuntime(config, MqttOptions(), publisher=publisher)
        assert runtime.spool is None
        assert [d.device for d in runtime.devices()] == ["cam-07"]
        runtime.start()
        try:
            wait_for(lambda: spool.depth() == 1, what="stream_lost start spooled")
        finally:
            runtime.stop()
        assert spool.depth() == 2  # the end, emitted on stop, went to the same spool
        assert not (tmp_path / "unused.sqlite3").exists()
