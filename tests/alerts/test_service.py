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


class AlertsProcess:
    """`yiwang alerts` on a copy of the shipped configuration, restartable, with its database."""

    def __init__(self, mosquitto: MosquittoServer, tmp_path: Path) -> None:
        self.port, self.tmp_path = mosquitto.port, tmp_path
        self.url = f"sqlite:///{tmp_path}/yiwang.db"
        self.env = {
            "YIWANG_MQTT_PORT": str(mosquitto.port),
            "YIWANG_DATABASE_URL": self.url,
            "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
            "YIWANG_ALERTS_CLIENT_ID": unique_name("alerts"),
            "YIWANG_CHECKPOINT_INTERVAL_S": "1",
        }
        self.starts = 0
        self.service: Service | None = None

    def start(self) -> Service:
        self.starts += 1
        service = Service(["alerts"], self.env, self.tmp_path, self.tmp_path / "alerts.log").start()
        wait_for(
            lambda: service.log().count("alerts subscribed") >= self.starts,
            30,
            f"alerts to subscribe:\n{service.log()}",
        )
        self.service = service
        return service

    def state(self, gateway: str, payload: dict[str, object]) -> None:
        publish(self.port, f"yiwang/v1/zhuganxiang/{gateway}/state", payload, retain=True)

    def flood(self, device: str, level_cm: float, seq: int) -> None:
        reading = {"device": device, "ts": now_ms(), "values": {"level_cm": level_cm}}
        publish(self.port, "yiwang/v1/zhuganxiang/gw-01/telemetry", {"seq": seq, "readings": [reading]})

    def flap(self, gateway: str, times: int) -> None:
        """A flaky 5G link: the last will, then the gateway's birth state again, ``times`` over."""
        for _ in range(times):
            self.state(gateway, {"online": False})
            self.state(gateway, {"online": True, "ts": now_ms()})

    def firing(self) -> list[str]:
        db = make_engine(self.url)
        try:
            with Session(db) as session:
                return list(session.scalars(select(Alert.fingerprint).where(Alert.status == "firing")))
        finally:
            db.dispose()

    def clear_retained(self) -> None:
        for gateway in ("gw-01", "gw-02"):
            argv = ["mosquitto_pub", "-p", str(self.port), "-t", f"yiwang/v1/zhuganxiang/{gateway}/state"]
            subprocess.run([*argv, "-r", "-n"], check=True, timeout=10)


def test_a_flapping_gateway_is_resolved_when_online_and_a_flood_still_opens_its_case(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    platform = AlertsProcess(mosquitto, tmp_path)
    alerts = platform.start()
    try:
        platform.flap("gw-01", 4)
        wait_for(
            lambda: (
                alert_status(platform.url, "gateway-offline|zhuganxiang|gw-01") == "resolved"
                and gateway_online(platform.url, "gw-01")
            ),
            15,
            f"the flapping gateway alert to resolve once online:\n{alerts.log()}",
        )
        platform.flood("wl-01", 72.0, seq=1)
        wait_for(
            lambda: ("flooding", "g-north", "flooding-water-level") in opened_cases(platform.url),
            15,
            f"the flood to open its case:\n{alerts.log()}",
        )
        # The link drops once more and no birth state follows (lost on the flaky link): the next
        # readings prove the gateway online; its flood is never inhibited.
        platform.state("gw-01", {"online": False})
        wait_for(lambda: gateway_online(platform.url, "gw-01") is False, 10, "the last will")
        platform.flood("wl-02", 65.0, seq=2)
        wait_for(
            lambda: (
                alert_status(platform.url, "flooding-water-level|zhuganxiang|wl-02") == "firing"
                and alert_status(platform.url, "gateway-offline|zhuganxiang|gw-01") == "resolved"
            ),
            15,
            f"the second flood, and the gateway proved online by it:\n{alerts.log()}",
        )
        assert gateway_online(platform.url, "gw-01") is True  # the fleet page follows the facts
        db = make_engine(platform.url)
        try:
            with Session(db) as session:
                alert = session.get(Alert, "flooding-water-level|zhuganxiang|wl-02")
                assert alert is not None and not alert.inhibited and alert.case_id is not None
                devices = session.scalars(select(Evidence.device).where(Evidence.rule_id.like("flooding%")))
                assert set(devices) == {"wl-01", "wl-02"}
        finally:
            db.dispose()
    finally:
        assert alerts.stop() == 0
        platform.clear_retained()


def test_a_restart_with_retained_online_states_leaves_nothing_firing(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    platform = AlertsProcess(mosquitto, tmp_path)
    alerts = platform.start()
    try:
        platform.flap("gw-02", 4)
        platform.state("gw-02", {"online": False})  # down (and flapping) when the service stops
        wait_for(
            lambda: "gateway-offline|zhuganxiang|gw-02" in platform.firing(),
            15,
            f"the gateway alert:\n{alerts.log()}",
        )
    finally:
        assert alerts.stop() == 0
    try:
        # While the service is away, both gateways come back: only their retained states tell it.
        platform.state("gw-01", {"online": True, "ts": now_ms()})
        platform.state("gw-02", {"online": True, "ts": now_ms()})
        alerts = platform.start()
        try:
            wait_for(
                lambda: alert_status(platform.url, "gateway-offline|zhuganxiang|gw-02") == "resolved",
                15,
                f"the restarted service to reconcile with the retained states:\n{alerts.log()}",
            )
            assert platform.firing() == []
        finally:
            assert alerts.stop() == 0
    finally:
        platform.clear_retained()
