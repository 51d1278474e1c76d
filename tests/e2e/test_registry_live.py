"""A device added through the API is stored, judged by its type's rules and opens a case within 5 s —
the API, ingest and alerts as real processes, no restart; a device in maintenance is stored and opens
no case, its alert inhibited."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from api.accounts import ensure_demo_operator
from common.db import make_engine
from tests.platform import CONFIG_DIR, Service, now_ms, wait_for
from yiwang.servers import MosquittoServer, free_port, unique_name

pytestmark = pytest.mark.e2e
TOPIC = "yiwang/v1/zhuganxiang/gw-02/telemetry"


@pytest.fixture
def stack(tmp_path: Path, mosquitto: MosquittoServer) -> Iterator[tuple[httpx.Client, list[Service]]]:
    http_port = free_port()
    database_url = f"sqlite:///{tmp_path}/yiwang.db"
    env = {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_DATABASE_URL": database_url,
        "YIWANG_SERIES_URL": f"sqlite:///{tmp_path}/series.db",
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "YIWANG_INGEST_METRICS_PORT": "0",
        "YIWANG_INGEST_CLIENT_ID": unique_name("ingest"),
        "YIWANG_ALERTS_CLIENT_ID": unique_name("alerts"),
        "YIWANG_REGISTRY_POLL_S": "1",
    }
    init = Service(["db", "init"], env, tmp_path, tmp_path / "db.log").start()
    assert init.proc is not None and init.proc.wait(60) == 0, init.log()
    api = Service(["api"], env, tmp_path, tmp_path / "api.log").start()
    services = [api]
    base = f"http://127.0.0.1:{http_port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, f"the API; log:\n{api.log()}")  # it seeds the registry before it listens
        services += [
            Service([name], env, tmp_path, tmp_path / f"{name}.log").start() for name in ("ingest", "alerts")
        ]
        db = make_engine(database_url)
        token = ensure_demo_operator(db, tmp_path / "credentials.json")["token"]
        db.dispose()
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        yield client, services
        client.close()
    finally:
        for service in services[::-1]:
            service.stop()


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("gw"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _send(client: mqtt.Client, seq: int, device: str, level: float) -> None:
    reading = {"device": device, "ts": now_ms(), "values": {"level_cm": level}}
    client.publish(TOPIC, json.dumps({"seq": seq, "readings": [reading]}), qos=1).wait_for_publish(5)


def _cases_of(api: httpx.Client, device: str) -> list[dict]:
    items = api.get("/api/v1/cases", params={"open": "true", "category": "flooding"}).json()["items"]
    found = []
    for case in items:
        detail = api.get(f"/api/v1/cases/{case['id']}").json()
        if any(e.get("device") == device for e in detail["evidence"]):
            found.append(detail)
    return found


def test_a_device_added_through_the_api_opens_a_case_within_5_s(
    stack: tuple[httpx.Client, list[Service]], mosquitto: MosquittoServer
) -> None:
    api, services = stack
    logs = lambda: "\n".join(s.log()[-1500:] for s in services)  # noqa: E731
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

        def case_opened() -> list[dict]:
            _send(gateway, next(seq), "wl-09", 88)
            return _cases_of(api, "wl-09")

        [case] = wait_for(case_opened, 15, f"a flooding case of the new device; logs:\n{logs()}", 0.3)
        assert time.monotonic() - posted <= 5.0, f"the case took {time.monotonic() - posted:.1f} s"
        assert case["grid"] == "g-south"
        assert api.get("/api/v1/devices/wl-09/telemetry").json()["points"]

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

        def flood_alert_of_wl03() -> list[dict]:
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
