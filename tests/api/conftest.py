"""Fixtures of the API tests: an app on fresh SQLite stores, and an operator's bearer token."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import accounts
from api.app import create_app
from api.settings import ApiSettings
from yiwang.common.db import make_engine

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    return ApiSettings(
        database_url=f"sqlite:///{tmp_path}/yiwang.db",
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG,
        mqtt_port=1,  # nothing listens there: the broker shows as down
    )


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def token(client: TestClient, settings: ApiSettings) -> str:
    engine = make_engine(settings.database_url)
    user = accounts.create_user(engine, "op", "correct horse", role="district_operator")
    token = accounts.issue_token(engine, user)
    engine.dispose()
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
