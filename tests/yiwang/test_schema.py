import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect

from common.db import make_engine
from yiwang.schema import METADATA, create_all, fingerprint, reset_demo_database_if_outdated, table_names


def _drop_all(db: Engine) -> None:
    for metadata in reversed(METADATA):
        metadata.drop_all(db)


def test_demo_database_of_an_older_schema_is_moved_aside_once(tmp_path: Path) -> None:
    url, marker = f"sqlite:///{tmp_path}/yiwang.db", tmp_path / "schema-version"
    create_all(url)
    assert reset_demo_database_if_outdated(url, marker)  # no marker: made by an unknown (older) version
    assert (tmp_path / "yiwang.db.old").exists() and not (tmp_path / "yiwang.db").exists()
    assert marker.read_text().strip() == fingerprint()
    create_all(url)
    assert not reset_demo_database_if_outdated(url, marker)  # same schema: kept
    assert (tmp_path / "yiwang.db").exists()
    marker.write_text("0000000000000000\n")
    assert reset_demo_database_if_outdated(url, marker)


def test_a_fresh_directory_needs_no_reset(tmp_path: Path) -> None:
    assert not reset_demo_database_if_outdated(f"sqlite:///{tmp_path}/none.db", tmp_path / "v")


def _create_when_released(url: str, start: Any) -> None:
    start.wait()
    create_all(url)


@pytest.mark.e2e
def test_services_starting_together_on_a_fresh_database_all_get_their_tables(database_url: str) -> None:
    """Ingest replicas (and `yiwang up`'s services) create their tables at the same moment."""
    context = multiprocessing.get_context("spawn")
    for _round in range(3):
        start = context.Event()
        workers = [
            context.Process(target=_create_when_released, args=(database_url, start)) for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        time.sleep(2)  # every worker imported and waiting
        start.set()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0] * len(workers)
        db = make_engine(database_url)
        try:
            assert table_names() <= set(inspect(db).get_table_names())
            _drop_all(db)  # the next round starts from a fresh database again
        finally:
            db.dispose()
