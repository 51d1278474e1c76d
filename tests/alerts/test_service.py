"""The alert service as a process against a real Mosquitto: live stream in, cases out, state kept."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.fleet import GatewayStatus
from alerts.models import Alert
from cases.models import Case, Evidence
from common.db import make_engine
from tests.platform import CONFIG_DIR, Service, now_ms, wait_for
from yiwang.servers import MosquittoServer, unique_name

pytestmark = pytest.mark.integration

HOT_ROOM = """
rules:
  - id: hot-room
    version: 1
    scope: {device: th-0101}
    threshold: {field: temperature, op: ">=", value: 40, clear: 35}
    for_s: 8
    severity: critical
    category: fire_smoke
"""


def publish(port: int, topic: str, payload: dict[str, object], *, retain: bool = False) -> None:
    argv = ["mosquitto_pub", "-p", str(port), "-t", topic, "-q", "1", "-m", json.dumps(payload)]
    subprocess.run([*argv, "-r"] if retain else argv, check=True, timeout=10)


def alert_status(url: str, fingerprint: str) -> str | None:
    db = make_engine(url)
    try:
        with Session(db) as session:
            alert = session.get(Alert, fingerprint)
            return alert.status if alert else None
    finally:
        db.dispose()


def gateway_online(url: str, gateway: str) -> bool | None:
    db = make_engine(url)
    try:
        with Session(db) as session:
            row = session.get(GatewayStatus, ("zhuganxiang", gateway))
            return row.online if row else None
    finally:
        db.dispose()


def opened_cases(url: str) -> list[tuple[str, str, str]]:
    db = make_engine(url)
    try:
        with Session(db) as session:
            rows = session.execute(select(Case.category, Case.grid, Evidence.rule_id).join(Evidence)).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        db.dispose()


def test_pending_timer_survives_a_restart_and_gateway_will_opens_one_case(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "rules" / "hot-room.yaml").write_text(HOT_ROOM)
    url = f"sqlite:///{tmp_path}/yiwang.db"
    env = {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_DATABASE_URL": url,
        "YIWANG_CONFIG_DIR": str(config),
        "YIWANG_ALERTS_CLIENT_ID": unique_name("alerts"),
        "YIWANG_CHECKPOINT_INTERVAL_S": "1",
    }

    def start() -> Service:
        service = Service(["alerts"], env, tmp_path, tmp_path / "alerts.log").start()
        wait_for(
            lambda: service.log().count("alerts subscribed") >= starts,
            30,
            f"alerts to subscribe:\n{service.log()}",
        )
        return service

    starts = 1
    alerts = start()
    publish(
        mosquitto.port,
        "yiwang/v1/zhuganxiang/gw-01/telemetry",
        {
            "seq": 1,
            "readings": [
                {"device": "th-0101", "ts": now_ms(), "values": {"temperature": 45.0, "humidity": 40.0}}
            ],
        },
    )
    fingerprint = "hot-room|zhuganxiang|th-0101"
    wait_for(lambda: alert_status(url, fingerprint) == "pending", 10, "the pending alert")
    assert alerts.stop() == 0  # a clean stop checkpoints the engine

    starts = 2
    alerts = start()
    try:
        # Nothing new is published: the restored `for` timer alone turns pending into firing.
        wait_for(
            lambda: alert_status(url, fingerprint) == "firing", 20, f"the restored timer:\n{alerts.log()}"
        )
        assert ("fire_smoke", "g-north", "hot-room") in opened_cases(url)

        # A gateway's last will: one device_offline case for the gateway, none per device.
        publish(mosquitto.port, "yiwang/v1/zhuganxiang/gw-02/state", {"online": False}, retain=True)
        wait_for(
            lambda: alert_status(url, "gateway-offline|zhuganxiang|gw-02") == "firing",
            10,
            "the gateway alert",
        )
        offline = [c for c in opened_cases(url) if c[0] == "device_offline"]
        assert offline == [("device_offline", "g-middle", "gateway-offline")]
        wait_for(lambda: gateway_online(url, "gw-02") is False, 10, "the recorded gateway state")
    finally:
        assert alerts.stop() == 0
        # Clear the retained will so later tests on this broker start from a clean slate.
        subprocess.run(
            [
                "mosquitto_pub",
                "-p",
                str(mosquitto.port),
                "-t",
                "yiwang/v1/zhuganxiang/gw-02/state",
                "-r",
                "-n",
            ],
            check=True,
            timeout=10,
        )
