"""/metrics tells who uses which route how much: with YIWANG_METRICS_TOKEN set, the real API process
serves it only to a bearer of that token; unset (the demo), it stays open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api.metrics import MetricsSettings
from tests.platform import CONFIG_DIR, Service, wait_for
from tests.security.conftest import RealApi, bearer
from yiwang.schema import create_all
from yiwang.servers import free_port

METRICS_TOKEN = "m3tr1cs-4d9e0b7a21c6f58e"


@pytest.fixture(scope="module")
def guarded_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("metrics")
    database_url = f"sqlite:///{tmp}/yiwang.db"
    create_all(database_url)
    port = free_port()
    env = {
        "YIWANG_DATABASE_URL": database_url,
        "YIWANG_SERIES_URL": f"sqlite:///{tmp}/series.db",
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_HTTP_PORT": str(port),
        "YIWANG_MQTT_PORT": "1",
        "YIWANG_METRICS_TOKEN": METRICS_TOKEN,
    }
    api = Service(["api"], env, tmp, tmp / "api.log").start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    wait_for(up, 30, f"the API; log:\n{api.log()}")
    yield base
    assert api.stop() == 0, api.log()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong-token"),
        bearer(METRICS_TOKEN[:-1]),
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": METRICS_TOKEN},
    ],
    ids=["none", "wrong", "prefix", "basic", "bare"],
)
def test_metrics_without_the_token_is_refused(guarded_api: str, headers: dict[str, str]) -> None:
    answer = httpx.get(f"{guarded_api}/metrics/", headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "yiwang_api_requests" not in answer.text and "needs a bearer token" in answer.text


def test_metrics_with_the_token_are_served(guarded_api: str) -> None:
    httpx.get(f"{guarded_api}/healthz", timeout=5)
    answer = httpx.get(f"{guarded_api}/metrics/", headers=bearer(METRICS_TOKEN), timeout=5)
    assert answer.status_code == 200
    assert 'yiwang_api_requests_total{method="GET",route="/healthz"' in answer.text


def test_metrics_stay_open_when_no_token_is_set(real_api: RealApi) -> None:
    answer = httpx.get(f"{real_api.base}/metrics/", timeout=5)
    assert answer.status_code == 200 and "yiwang_api_requests" in answer.text


def test_the_placeholder_is_not_a_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIWANG_METRICS_TOKEN", " changethis ")
    with pytest.raises(ValidationError, match="YIWANG_METRICS_TOKEN"):
        MetricsSettings()
    monkeypatch.setenv("YIWANG_METRICS_TOKEN", "")
    assert MetricsSettings().metrics_token is None
