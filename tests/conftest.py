"""Shared fixtures. Real servers are session-scoped (started once, on first use); each test that
needs isolation gets its own database on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from alerts.schema import create_schema
from common.db import make_engine
from yiwang.schema import ensure_schema
from yiwang.servers import (
    InfluxDatabase,
    InfluxServer,
    MosquittoServer,
    PostgresServer,
    start_influxd,
    start_mosquitto,
    start_postgres,
    unique_name,
)

SERVER_FIXTURES = frozenset({"mosquitto", "influxdb", "postgres"})
SECURITY_TESTS = Path(__file__).resolve().parent / "security"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts a real server, or attacks a real process (``tests/security``), is an
    integration test whether or not its author said so: `make test-fast` never waits for one."""
    for item in items:
        attack = SECURITY_TESTS in Path(str(item.fspath)).parents  # each attacks a real process
        if attack or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# --- real servers (session) -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoServer]:
    """A Mosquitto broker on a free port: ``.host``, ``.port``; ``.restart(kill=True)`` for chaos."""
    server = start_mosquitto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb() -> Iterator[InfluxServer]:
    """An influxd 1.x: ``.url`` (http://127.0.0.1:PORT) and ``.database`` (shared by the session)."""
    server = start_influxd()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 cluster: ``.url`` is the SQLAlchemy URL of a database shared by the session."""
    server = start_postgres()
    yield server
    server.stop()


# --- a fresh database per test ----------------------------------------------------------------------


@pytest.fixture
def influx_database(influxdb: InfluxServer) -> Iterator[InfluxDatabase]:
    """An empty InfluxDB database of this test: ``.url``, ``.database``, ``.store_url``."""
    database = influxdb.create_database(unique_name("test"))
    yield database
    influxdb.drop_database(database.database)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of an empty PostgreSQL database of this test (dropped afterwards)."""
    name = unique_name("test")
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The relational store, once as the embedded SQLite default and once on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db')}/yiwang.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """The case and alert tables on each relational store the suite runs against (``database_url``)."""
    db = make_engine(database_url)
    create_schema(db)
    yield db
    db.dispose()


SchemaDatabases = Callable[[], AbstractContextManager[str]]


@pytest.fixture(scope="session")
def postgres_schema_databases(postgres: PostgresServer) -> SchemaDatabases:
    """Fresh PostgreSQL databases with every table in them: ``with postgres_schema_databases() as url``
    (dropped at the end of the block). Each is a copy of one template brought to the newest schema the
    production way (``ensure_schema``, as `yiwang db upgrade` and compose's migrate job do); copying is
    far quicker than creating the tables again for each test."""
    import psycopg  # the server extra, as in yiwang.servers.postgres

    template = unique_name("template")
    ensure_schema(postgres.create_database(template))

    @contextmanager
    def fresh() -> Iterator[str]:
        name = unique_name("test")
        with psycopg.connect(
            host=postgres.host, port=postgres.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'.encode())
        try:
            yield postgres.url_for(name)
        finally:
            postgres.drop_database(name)

    return fresh


@pytest.fixture
def postgres_schema_url(postgres_schema_databases: SchemaDatabases) -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database of this test with every table in it."""
    with postgres_schema_databases() as url:
        yield url
