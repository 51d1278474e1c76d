"""Fixtures of the API tests: an app on a fresh relational store, and an operator's bearer token; and,
per module, an app on the two seeded towns (``tests/api/two_towns.py``) for the cross-jurisdiction checks.

Every test that uses the app runs twice: on the embedded SQLite default and on a real PostgreSQL (the
production choice). A PostgreSQL test gets its own database, copied from a migrated template.
The series store stays SQLite: the API reads it through the same interface as InfluxDB."""

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from api import accounts
from api.app import create_app
from api.audit import audit_log
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.two_towns import Seeded, seed

CONFIG = Path(__file__).resolve().parents[2] / "config"


RELATIONAL_STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(params=RELATIONAL_STORES)
def api_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The app's relational store: a SQLite file the app creates its tables in, or a PostgreSQL
    database of this test with the migrated schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/yiwang.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, api_database_url: str) -> ApiSettings:
    return ApiSettings(
        database_url=api_database_url,
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG,
        mqtt_port=1,  # nothing listens there: the broker shows as down
        attachments_dir=tmp_path / "photos",  # never the working tree's var/
    )


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def token(client: TestClient, settings: ApiSettings) -> str:
    db = make_engine(settings.database_url)
    user = accounts.create_user(db, "op", "correct horse", role="district_operator")
    token = accounts.issue_token(db, user)
    db.dispose()
    return token


@pytest.fixture
def login(settings: ApiSettings, client: TestClient) -> Iterator[Callable[..., str]]:
    """``login(username, role, **scope)``: a new account of that role, and a token of it."""
    db = make_engine(settings.database_url)

    def make(username: str, role: str, **scope: str) -> str:
        user = accounts.create_user(db, username, "pw-" + username, role, **scope)
        return accounts.issue_token(db, user)

    yield make
    db.dispose()


def console_login(
    client: TestClient,
    username: str = "op",
    password: str = "correct horse",  # noqa: S107 - the test account's
    **kw: Any,
) -> Response:
    """The console's login form as a browser sends it: with the CSRF token of the login page."""
    form = client.get("/console/login").text
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match is not None, form[:300]
    data = {"username": username, "password": password, "csrf": match.group(1)}
    return client.post("/console/login", data=data, **kw)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audited(settings: ApiSettings, path_like: str = "%") -> list[tuple[str, str, str, int]]:
    """The audit log's (actor, method, path, status) rows for paths LIKE ``path_like``."""
    db = make_engine(settings.database_url)
    try:
        with db.connect() as conn:
            rows = conn.execute(
                select(audit_log.c.actor, audit_log.c.method, audit_log.c.path, audit_log.c.status).where(
                    audit_log.c.path.like(path_like)
                )
            ).all()
    finally:
        db.dispose()
    return [tuple(row) for row in rows]


@pytest.fixture(scope="module", params=RELATIONAL_STORES)
def towns(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """Two towns with cases, devices, silences and a token per role (one set per test module and store)."""
    tmp = tmp_path_factory.mktemp("towns")
    if request.param == "sqlite":
        yield seed(tmp)
        return
    databases: Callable[[], AbstractContextManager[str]] = request.getfixturevalue(
        "postgres_schema_databases"
    )
    with databases() as url:
        yield seed(tmp, url)


@pytest.fixture(scope="module")
def towns_api(towns: Seeded) -> Iterator[TestClient]:
    with TestClient(create_app(towns.settings)) as client:
        yield client


def settings_keeping_photos(tmp_path: Path, database_url: str) -> ApiSettings:
    """The API tests' settings, the photos kept in the test's own directory (for the photo tests)."""
    return ApiSettings(
        database_url=database_url,
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG,
        mqtt_port=1,
        attachments_dir=tmp_path / "photos",
    )
