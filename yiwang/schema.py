"""Create every service's tables; `yiwang db init` and `yiwang up` run it before services start.

Services also create what they own when it is missing, but doing it once up front avoids two
processes racing to create the same table on first start.
"""

from __future__ import annotations

from alerts.schema import create_schema as create_case_schema
from api import accounts
from ingest.deadletters import metadata as dead_letter_metadata
from yiwang.common.db import make_engine
from yiwang.common.heartbeat import metadata as heartbeat_metadata


def create_all(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        create_case_schema(engine)
        accounts.create_schema(engine)
        dead_letter_metadata.create_all(engine)
        heartbeat_metadata.create_all(engine)
    finally:
        engine.dispose()
