"""`yiwang bench api`: its figure is PostgreSQL's unless SQLite is asked for, and the cases it reports
are counted in the database after loading, not echoed from the argument.

PostgreSQL's absence is simulated at the boundary the bench looks at: the directory of its binaries.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cases.policy import CasePolicy
from tests.platform import CONFIG_DIR
from yiwang.bench import BenchError
from yiwang.bench import api as api_bench
from yiwang.cli import app
from yiwang.servers import postgres as postgres_server

CASES, REQUESTS = 300, 5


@pytest.fixture
def no_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_server, "POSTGRES_BIN_DIR", tmp_path / "no-postgresql" / "bin")


def test_the_cli_refuses_to_measure_without_postgresql(
    no_postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIWANG_CONFIG_DIR", str(CONFIG_DIR))
    loaded: list[int] = []
    monkeypatch.setattr(api_bench, "populate", lambda _db, _policy, cases: loaded.append(cases))
    result = CliRunner().invoke(app, ["bench", "api", "--json"])
    assert result.exit_code == 2
    assert "needs PostgreSQL 15" in result.output and "--allow-sqlite" in result.output
    assert "{" not in result.output and loaded == []  # no figure, and nothing loaded first


@pytest.mark.integration
def test_with_allow_sqlite_it_measures_sqlite_and_says_so(no_postgres: None) -> None:
    report = api_bench.run(CONFIG_DIR, cases=CASES, requests=REQUESTS, allow_sqlite=True)
    assert report["store"] == "sqlite"
    assert report["cases_loaded"] == CASES and report["case_events"] == CASES * 10
    assert report["queue_p50_ms"] > 0


@pytest.mark.integration
def test_on_postgresql_the_cases_are_counted_in_the_database() -> None:
    report = api_bench.run(CONFIG_DIR, cases=CASES, requests=REQUESTS)
    assert report["store"] == "postgresql" and report["cases_loaded"] == CASES
    assert "db" not in report and "cases" not in report


@pytest.mark.integration
def test_a_load_short_of_what_was_asked_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    load: Callable[[Engine, CasePolicy, int], None] = api_bench.populate
    # The loader drops seven cases: only a count in the database can notice.
    monkeypatch.setattr(api_bench, "populate", lambda db, policy, cases: load(db, policy, cases - 7))
    with pytest.raises(BenchError, match=f"^{CASES - 7} cases in the database after loading {CASES}$"):
        api_bench.run(CONFIG_DIR, cases=CASES, requests=REQUESTS)
