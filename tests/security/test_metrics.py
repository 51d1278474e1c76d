"""/metrics tells who uses which route how much: with YIWANG_METRICS_TOKEN set, the real API process
serves it only to a bearer of that token; unset (the demo), it stays open."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from api.metrics import MetricsSettings
from tests.security.conftest import RealApi, api_process, bearer

METRICS_TOKEN = "m3tr1cs-4d9e0b7a21c6f58e"


@pytest.fixture(scope="module")
def guarded_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"YIWANG_METRICS_TOKEN": METRICS_TOKEN}
    with api_process(tmp_path_factory.mktemp("metrics"), env, lambda _url: None) as api:
        yield api.base


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
