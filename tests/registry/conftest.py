"""The registry on each relational store, seeded or empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from common.db import Base, create_tables, make_engine
from registry import definitions
from registry.models import TABLES
from registry.rows import Town

CONFIG = Path(__file__).resolve().parents[2] / "config"
YUEHE = Town("yuehe", "越河街道", "任城区", ("zhuganxiang",))


@pytest.fixture
def registry_db(database_url: str) -> Iterator[Engine]:
    db = make_engine(database_url)
    create_tables(db, Base.metadata, tables=list(TABLES))
    definitions.create_schema(db)  # desired configs carry the stored profiles their devices use
    yield db
    db.dispose()
