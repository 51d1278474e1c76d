"""A copied `.env.example` must not go live: services refuse the `changethis` placeholder in any secret."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from alerts.service import AlertSettings
from api.settings import ApiSettings
from cases.service import CaseSettings
from edge.settings import EdgeSettings
from ingest.service import IngestSettings
from tests.platform import REPO

PLACEHOLDER_ENVS = [
    pytest.param({"YIWANG_MQTT_PASSWORD": "changethis"}, "YIWANG_MQTT_PASSWORD", id="mqtt-password"),
    pytest.param({"YIWANG_MQTT_PASSWORD": " ChangeThis "}, "YIWANG_MQTT_PASSWORD", id="mqtt-case-space"),
    pytest.param(
        {"YIWANG_DATABASE_URL": "postgresql+psycopg://yiwang:changethis@db:5432/yiwang"},
        "YIWANG_DATABASE_URL",
        id="database-url",
    ),
    pytest.param(
        {"YIWANG_SERIES_URL": "influxdb://influxdb:8086/yiwang?token=changethis"},
        "YIWANG_SERIES_URL",
        id="series-token",
    ),
    pytest.param(
        {"YIWANG_SERIES_URL": "influxdb://admin:changethis@influxdb:8086/yiwang"},
        "YIWANG_SERIES_URL",
        id="series-password",
    ),
]


@pytest.mark.parametrize("settings_class", [IngestSettings, AlertSettings, CaseSettings, ApiSettings])
@pytest.mark.parametrize(("env", "named"), PLACEHOLDER_ENVS)
def test_every_server_service_refuses_a_placeholder_secret(
    monkeypatch: pytest.MonkeyPatch, settings_class: type, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=named):
        settings_class()


def test_the_api_refuses_a_placeholder_session_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIWANG_SESSION_SECRET", "changethis")
    with pytest.raises(ValidationError, match="YIWANG_SESSION_SECRET"):
        ApiSettings()


def test_a_gateway_refuses_a_placeholder_broker_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIWANG_MQTT_PASSWORD", "changethis")
    with pytest.raises(ValidationError, match="YIWANG_MQTT_PASSWORD"):
        EdgeSettings()


def test_real_secrets_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIWANG_MQTT_PASSWORD", "3f9a0c2e7b1d")
    monkeypatch.setenv("YIWANG_DATABASE_URL", "postgresql+psycopg://yiwang:a1b2c3@db:5432/yiwang")
    monkeypatch.setenv("YIWANG_SERIES_URL", "influxdb://influxdb:8086/yiwang?token=changethis-not")
    monkeypatch.setenv("YIWANG_SESSION_SECRET", "e4d5c6b7a8f9e0d1c2b3a4958677869a")
    settings = ApiSettings()
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "3f9a0c2e7b1d"


@pytest.mark.e2e
@pytest.mark.parametrize("service", ["ingest", "alerts", "cases", "api"])
def test_a_service_process_exits_with_one_clear_line(service: str) -> None:
    env = {**os.environ, "YIWANG_MQTT_PASSWORD": "changethis"}
    done = subprocess.run(
        [sys.executable, "-m", "yiwang", service],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "refusing to start" in done.stderr
    assert "YIWANG_MQTT_PASSWORD" in done.stderr
    assert "Traceback" not in done.stderr
