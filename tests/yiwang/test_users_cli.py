"""`yiwang user add | reset | deactivate` on SQLite and a real PostgreSQL: a person of the organisation gets
an account and a one-time link; refusals say what to fix and exit 2; deactivation ends tokens at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from api import accounts
from api.account_links import link_state, redeem
from tests.platform import CONFIG_DIR
from yiwang.cli import app
from yiwang.schema import create_all

PASSWORD = "plum-river-47-cloud"


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    create_all(database_url)
    monkeypatch.setenv("YIWANG_DATABASE_URL", database_url)
    monkeypatch.setenv("YIWANG_CONFIG_DIR", str(CONFIG_DIR))
    return CliRunner()


def token_of(output: str) -> str:
    match = re.search(r"/console/welcome/([A-Za-z0-9_-]+)", output)
    assert match is not None, output
    return match.group(1)


def test_add_prints_a_one_time_link_that_sets_the_password(cli: CliRunner, db: Engine) -> None:
    added = cli.invoke(app, ["user", "add", "li.na", "--base-url", "https://yiwang.example.org/"])
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("https://yiwang.example.org/console/welcome/")
    assert "li.na is a grid_worker (李娜)" in added.stderr and "expires" in added.stderr
    user = accounts.find_user(db, "li.na")
    assert user is not None and (user.role, user.community, user.grid) == (
        "grid_worker",
        "zhuganxiang",
        "g-north",
    )
    assert accounts.authenticate(db, "li.na", PASSWORD) is None  # no password until the link is used
    assert redeem(db, token_of(added.stdout), PASSWORD) == "li.na"
    assert accounts.authenticate(db, "li.na", PASSWORD) is not None

    town = cli.invoke(app, ["user", "add", "wang.wei"])
    assert town.exit_code == 0 and town.stdout.startswith("http://127.0.0.1:8000/console/welcome/")
    wang = accounts.find_user(db, "wang.wei")
    assert wang is not None and (wang.role, wang.town, wang.grid) == ("town_operator", "yuehe", None)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["user", "add", "nobody.here"], "'nobody.here' is not among the organisation's people"),
        (["user", "add", "li.na", "--role", "admin"], "role 'admin' does not suit; one of grid_worker"),
        (["user", "reset", "ghost"], "no account 'ghost'"),
        (["user", "deactivate", "ghost"], "no account 'ghost'"),
    ],
)
def test_refusals_say_what_to_fix(cli: CliRunner, db: Engine, argv: list[str], says: str) -> None:
    refused = cli.invoke(app, argv)
    assert refused.exit_code == 2 and says in refused.stderr, refused.output
    assert refused.stdout == ""
    assert accounts.list_accounts(db) == []  # nothing half-made


def test_adding_twice_is_refused(cli: CliRunner) -> None:
    assert cli.invoke(app, ["user", "add", "liu.yang"]).exit_code == 0
    again = cli.invoke(app, ["user", "add", "liu.yang"])
    assert again.exit_code == 2 and "liu.yang has an account already" in again.stderr


def test_reset_and_deactivate(cli: CliRunner, db: Engine) -> None:
    first = token_of(cli.invoke(app, ["user", "add", "zhao.lei"]).stdout)
    redeem(db, first, PASSWORD)
    user = accounts.find_user(db, "zhao.lei")
    assert user is not None
    token = accounts.issue_token(db, user, "phone")

    reset = cli.invoke(app, ["user", "reset", "zhao.lei"])
    assert reset.exit_code == 0, reset.output
    assert accounts.authenticate(db, "zhao.lei", PASSWORD) is None  # the old password is gone at once
    assert link_state(db, first).refusal == "used"
    second = token_of(reset.stdout)
    assert link_state(db, second).refusal is None and link_state(db, second).purpose == "reset"

    off = cli.invoke(app, ["user", "deactivate", "zhao.lei"])
    assert off.exit_code == 0 and "sessions and tokens ended" in off.stderr
    assert accounts.user_for_token(db, token) is None
    assert link_state(db, second).refusal == "used"  # an open link dies with the account
    refused = cli.invoke(app, ["user", "reset", "zhao.lei"])
    assert refused.exit_code == 2 and "deactivated" in refused.stderr


def test_the_config_dir_is_read_from_the_environment(cli: CliRunner, db: Engine, tmp_path: Path) -> None:
    """An empty config directory: the refusal names the missing file."""
    empty = tmp_path / "config"
    empty.mkdir()
    refused = cli.invoke(app, ["user", "add", "li.na"], env={"YIWANG_CONFIG_DIR": str(empty)})
    # The CLI's entry point prints a ContractError as one line (yiwang/cli/__init__.py); here it is raised.
    assert refused.exit_code != 0 and str(empty) in str(refused.exception)
    assert accounts.list_accounts(db) == []
