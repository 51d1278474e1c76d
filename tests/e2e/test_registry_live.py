"""A device added through the API is stored, judged by its type's rules and opens a case within 5 s —
the API, ingest and alerts as real processes, no restart; a device in maintenance is stored and opens
no case, its alert inhibited."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.conftest import LiveStack
from tests.platform import now_ms, wait_for
from yiwang.servers import MosquittoServer, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.integration]  # live_stack: PostgreSQL and influxd
TOPIC = "yiwang/v1/zhuganxiang/gw-02/telemetry"


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("gw"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _send(client: mqtt.Client, seq: int, device: str, level: float) -> None:
    reading = {"device": device, "ts": now_ms(), "values": {"level_cm": level}}
    client.publish(TOPIC, json.dumps({"seq": seq, "readings": [reading]}), qos=1).wait_for_publish(5)


def _cases_of(api: httpx.Client, device: str) -> list[dict[str, Any]]:
    items = api.get("/api/v1/cases", params={"open": "true", "category": "flooding"}).json()["items"]
    found = []
    for case in items:
        detail = api.get(f"/api/v1/cases/{case['id']}").json()
        if any(e.get("device") == device for e in detail["evidence"]):
            found.append(detail)
    return found


def test_a_device_added_through_the_api_opens_a_case_within_5_s(
    live_stack: LiveStack, mosquitto: MosquittoServer
) -> None:
    api, logs = live_stack.api, live_stack.logs
    gateway = _publisher(mosquitto.port)
    seq = iter(range(1, 10_000))
    try:
        # Ingest and alerts are up once a known device's reading is stored.
        def stored_known() -> bool:
            _send(gateway, next(seq), "wl-03", 10)
            return bool(api.get("/api/v1/devices/wl-03/telemetry").json()["points"])

        wait_for(stored_known, 60, f"ingest storing readings; logs:\n{logs()}", 0.5)
        time.sleep(2)  # alerts subscribes after ingest on a slow machine: let it too

        created = api.post(
            "/api/v1/devices",
            json={
                "community": "zhuganxiang",
                "id": "wl-09",
                "type": "water.level@1",
                "gateway": "gw-02",
                "grid": "g-south",
                "building": "b-05",
                "location": "新地库入口",
            },
        )
        assert created.status_code == 201, created.text
        posted = time.monotonic()

        def case_opened() -> list[dict[str, Any]]:
            _send(gateway, next(seq), "wl-09", 88)
            return _cases_of(api, "wl-09")

        [case] = wait_for(case_opened, 15, f"a flooding case of the new device; logs:\n{logs()}", 0.3)
        assert time.monotonic() - posted <= 5.0, f"the case took {time.monotonic() - posted:.1f} s"
        assert case["grid"] == "g-south"
        # Ingest and alerts take the same reading each on its own: the store may follow the case by a moment.
        wait_for(
            lambda: api.get("/api/v1/devices/wl-09/telemetry").json()["points"],
            5,
            f"the new device's readings stored; logs:\n{logs()}",
            0.2,
        )

        # In maintenance: stored, judged, no case.
        assert (
            api.patch(
                "/api/v1/communities/zhuganxiang/devices/wl-03", json={"state": "maintenance"}
            ).status_code
            == 200
        )
        time.sleep(3)  # past a registry poll of ingest and alerts
        for _ in range(10):
            _send(gateway, next(seq), "wl-03", 90)
            time.sleep(0.2)

        def flood_alert_of_wl03() -> list[dict[str, Any]]:
            alerts = api.get("/api/v1/alerts", params={"limit": 200}).json()["items"]
            return [a for a in alerts if a["subject"] == "wl-03" and a["rule_id"] == "flooding-water-level"]

        [alert] = wait_for(flood_alert_of_wl03, 10, f"the maintenance device's alert; logs:\n{logs()}", 0.5)
        assert (alert["status"], alert["inhibited"], alert["case_id"]) == ("firing", True, None)
        assert _cases_of(api, "wl-03") == []
        points = api.get("/api/v1/devices/wl-03/telemetry").json()["points"]
        assert points[-1]["values"] == {"level_cm": 90.0}
    finally:
        gateway.disconnect()
        gateway.loop_stop()
