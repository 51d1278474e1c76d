"""Fixtures shared by the alerts tests: a case database on SQLite and PostgreSQL, a webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from alerts.schema import create_schema
from tests.alerts.webhook import Receiver
from yiwang.common.db import make_engine


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """The case schema on each relational store the suite runs against (``database_url``)."""
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
