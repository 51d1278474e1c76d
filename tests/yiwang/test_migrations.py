"""Alembic migrations of the relational store, on SQLite and on a real PostgreSQL.

The database of the last release before migrations (da115ad) is made by that release's own code, taken
from git, so the baseline is checked against what production databases really hold.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, Table, func, inspect, select
from typer.testing import CliRunner

from common.db import make_engine
from yiwang import migrations
from yiwang.cli import app
from yiwang.schema import METADATA, create_all, ensure_schema, table_names

ROOT = Path(__file__).resolve().parents[2]
BASELINE_COMMIT = "da115ad"
NOW = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    db = make_engine(database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def baseline_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The code of release da115ad, from git (the repository is this checkout)."""
    assert shutil.which("git") is not None and (ROOT / ".git").exists(), (
        f"this test checks out {BASELINE_COMMIT}: it needs git and this repository's history"
    )
    target = tmp_path_factory.mktemp("da115ad")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "alerts", "api", "ingest", "yiwang", "contract"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def create_all_of_release(release: Path, database_url: str) -> None:
    """What `yiwang db init` of that release did: its own create_all, in its own interpreter."""
    script = (
        "import sys, yiwang.schema as s\n"
        f"assert s.__file__.startswith({str(release)!r}), s.__file__\n"
        "s.create_all(sys.argv[1])\n"
    )
    env = os.environ | {"PYTHONPATH": str(release)}
    result = subprocess.run(
        [sys.executable, "-c", script, database_url],
        cwd=release,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def assert_matches_models(db: Engine) -> None:
    diffs = migrations.differences(db, METADATA)
    if diffs:
        pytest.fail(
            "the database at the newest revision differs from the models: write a revision with "
            "`yiwang db revision -m '...'` and read it. Differences (database -> models):\n  "
            + migrations.describe(diffs).replace("\n", "\n  "),
            pytrace=False,
        )


def our_tables(db: Engine) -> set[str]:
    return table_names() & set(inspect(db).get_table_names())


# --- (1) replaying every revision gives the models' schema ----------------------------------------


def test_upgrade_of_an_empty_database_gives_the_schema_of_the_models(db: Engine) -> None:
    migrations.upgrade(db)
    assert migrations.current(db) == migrations.head()
    assert_matches_models(db)


# --- (2) a database of the last release before migrations keeps its rows --------------------------


def fill_release_database(db: Engine) -> dict[str, int]:
    """Rows in the tables every later revision is most likely to touch, written with plain Core."""
    meta = MetaData()
    users, cases, events, letters = (
        Table(name, meta, autoload_with=db)
        for name in ("users", "cases", "case_events", "ingest_dead_letters")
    )
    with db.begin() as conn:
        conn.execute(
            users.insert(),
            [
                {
                    "username": "wang",
                    "display_name": "王",
                    "role": "grid_worker",
                    "community": "zgx",
                    "grid": "g1",
                    "password_hash": "x",
                    "created_at": NOW,
                },
                {
                    "username": "li",
                    "display_name": "李",
                    "role": "admin",
                    "community": None,
                    "grid": None,
                    "password_hash": "y",
                    "created_at": NOW,
                },
            ],
        )
        case_id = conn.execute(
            cases.insert().values(
                community="zgx",
                grid="g1",
                category="waterlogging",
                state="FILED",
                title="积水",
                source="sensor",
                severity="critical",
                urgency="urgent",
                opened_at=NOW,
                deadline=NOW,
                updated_at=NOW,
                version=3,
                description="",
                owner_town="t1",
                stage="FILED",
                stage_warned=False,
                breaches=0,
            )
        ).inserted_primary_key[0]
        conn.execute(
            events.insert(),
            [
                {
                    "case_id": case_id,
                    "at": NOW,
                    "actor": "system",
                    "action": action,
                    "note": "",
                    "data": {"n": n},
                }
                for n, action in enumerate(("open", "verify", "file"))
            ],
        )
        conn.execute(
            letters.insert().values(received_at=NOW, topic="yiwang/v1/x", reason="bad", payload=b"\x00\xff")
        )
    return {"users": 2, "cases": 1, "case_events": 3, "ingest_dead_letters": 1}


def test_a_database_made_by_the_last_release_upgrades_and_keeps_its_rows(
    database_url: str, db: Engine, baseline_release: Path
) -> None:
    create_all_of_release(baseline_release, database_url)
    counts = fill_release_database(db)

    done = ensure_schema(database_url)

    assert migrations.current(db) == migrations.head()
    assert f"stamped {migrations.BASELINE}" in done or f"stamped {migrations.head()}" in done, done
    assert our_tables(db) == table_names()
    meta = MetaData()
    with db.connect() as conn:
        for name, count in counts.items():
            table = Table(name, meta, autoload_with=conn)
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == count, name
        case = conn.execute(select(Table("cases", meta, autoload_with=conn))).one()
        assert (case.title, case.state, case.version, case.urgency) == ("积水", "FILED", 3, "urgent")
        letter = conn.execute(select(Table("ingest_dead_letters", meta))).one()
        assert letter.payload == b"\x00\xff"
    assert ensure_schema(database_url) == f"at {migrations.head()}"  # idempotent


def test_the_baseline_is_the_schema_the_last_release_created(
    database_url: str, db: Engine, baseline_release: Path
) -> None:
    """Revision 0001 alone creates exactly what create_all of da115ad did, so stamping it is honest."""
    create_all_of_release(baseline_release, database_url)
    made_by_release = structure(db)
    release = MetaData()
    release.reflect(db)
    release.drop_all(db)
    assert our_tables(db) == set()

    migrations.upgrade(db, migrations.BASELINE)

    made_by_baseline = structure(db)
    assert made_by_baseline.keys() == made_by_release.keys()
    for table, shape in made_by_release.items():
        assert made_by_baseline[table] == shape, table


def structure(db: Engine) -> dict[str, dict[str, object]]:
    """Every table of ours as the database reports it: columns, keys, indexes, unique constraints."""
    inspector = inspect(db)
    out: dict[str, dict[str, object]] = {}
    for table in sorted(our_tables(db)):
        columns = [
            (c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(table)
        ]
        foreign = sorted(
            (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
            for f in inspector.get_foreign_keys(table)
        )
        indexes = sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
        )
        uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        primary = inspector.get_pk_constraint(table)["constrained_columns"]
        out[table] = {"columns": columns, "pk": primary, "fk": foreign, "indexes": indexes, "unique": uniques}
    return out


def test_tables_made_by_this_versions_create_all_are_stamped_head(database_url: str, db: Engine) -> None:
    create_all(database_url)  # a service started before anyone ran `yiwang db upgrade`
    assert migrations.current(db) is None

    assert (
        ensure_schema(database_url)
        == f"tables made by this version's create_all: stamped {migrations.head()}"
    )
    assert migrations.current(db) == migrations.head()


def test_an_empty_database_is_created_at_head(database_url: str, db: Engine) -> None:
    assert ensure_schema(database_url) == f"created the schema at {migrations.head()}"
    assert our_tables(db) == table_names()
    assert ensure_schema(database_url) == f"at {migrations.head()}"


# --- (3) downgrades ----------------------------------------------------------------------------------


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(db: Engine) -> None:
    migrations.upgrade(db)
    migrations.downgrade(db, "base")
    assert our_tables(db) == set()
    assert migrations.current(db) is None
    migrations.upgrade(db)
    assert migrations.current(db) == migrations.head()


# --- the CLI -----------------------------------------------------------------------------------------


def test_db_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIWANG_DATABASE_URL", f"sqlite:///{tmp_path}/yiwang.db")
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current"])
    assert before.exit_code == 1 and "none (not managed by migrations yet)" in before.output
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and f"created the schema at {migrations.head()}" in upgraded.output
    again = runner.invoke(app, ["db", "init"])
    assert again.exit_code == 0 and f"db: at {migrations.head()}" in again.output
    after = runner.invoke(app, ["db", "current"])
    assert (
        after.exit_code == 0 and after.output.startswith(migrations.head()) and "up to date" in after.output
    )


def test_db_revision_writes_a_revision_that_brings_head_to_the_models(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Autogenerate (on scratch SQLite) into a copy of the scripts: the new head, replayed from empty on
    either database, equals the models."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations.HERE, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrations, "HERE", scripts)
    before = migrations.head()

    result = CliRunner().invoke(app, ["db", "revision", "-m", "catch up with the models"])

    assert result.exit_code == 0, result.output
    written = next((scripts / "versions").glob("v*_catch_up_with_the_models.py"))
    assert f"wrote {written}" in result.output
    head = migrations.head()
    assert head == f"{int(before) + 1:04d}"
    assert f"down_revision: str | None = {before!r}" in written.read_text(encoding="utf-8").replace('"', "'")
    migrations.upgrade(db)
    assert_matches_models(db)


def test_db_revision_needs_a_message() -> None:
    result = CliRunner().invoke(app, ["db", "revision"])
    assert result.exit_code == 2 and "--message" in result.output
