"""Cameras embedded in the gateway agent: one MQTT client, one seq; camera health in the retained state."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from contract import StateMessage, TopicKind, decode_message
from edge.agent import run_agent
from tests.platform import wait_for
from yiwang.servers import MosquittoServer, free_port, unique_name

pytestmark = pytest.mark.integration
CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


def test_agent_runs_the_cameras_and_reports_their_health(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    community = unique_name("c").replace("_", "-")
    cameras = {
        "community": community,
        "gateway": "gw-01",
        "http": {"port": 0},
        "cameras": [
            {"id": "cam-07", "source": f"http://127.0.0.1:{free_port()}/dead", "stream_timeout_s": 0.5}
        ],
    }
    (tmp_path / "cameras.yaml").write_text(yaml.safe_dump(cameras))
    gateway = {
        "community": community,
        "gateway": "gw-01",
        "config_dir": str(CONFIG_DIR),
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
        "spool": {"dir": str(tmp_path / "spool")},
        "metrics": {"port": None},
        "state_interval_s": 1,
        "buses": [],
        "cameras": str(tmp_path / "cameras.yaml"),
    }
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway))

    seen: dict[str, list[bytes]] = {}
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("sub"))
    subscriber.on_message = lambda _c, _u, msg: seen.setdefault(msg.topic.rsplit("/", 1)[1], []).append(
        msg.payload
    )
    subscriber.connect("127.0.0.1", mosquitto.port)
    subscriber.subscribe(f"yiwang/v1/{community}/gw-01/#", qos=1)
    subscriber.loop_start()
    stop = threading.Event()
    agent = threading.Thread(target=run_agent, args=(tmp_path / "gateway.yaml", stop), daemon=True)
    agent.start()
    try:

        def camera_state() -> dict[str, object] | None:
            for payload in reversed(seen.get("state", [])):
                state = decode_message(TopicKind.STATE, payload)
                assert isinstance(state, StateMessage)
                if state.cameras:
                    return {k: v.model_dump() for k, v in state.cameras.items()}
            return None

        health = wait_for(camera_state, 20, "camera health in the retained state")
        assert health["cam-07"]["connected"] is False  # type: ignore[index]
        events = wait_for(lambda: seen.get("event"), 20, "the stream_lost event")
        kinds = [e["kind"] for p in events for e in json.loads(p)["events"]]
        assert "camera.stream_lost" in kinds
        devices = json.loads(seen["devices"][-1])["devices"]
        assert {"device": "cam-07", "type": "camera.events@1"} in devices
    finally:
        stop.set()
        agent.join(30)
        subscriber.disconnect()
        subscriber.loop_stop()
    assert not agent.is_alive()
