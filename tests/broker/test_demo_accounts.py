"""Demo mode's broker accounts: created once, reused after, repaired when the password file changed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from broker.accounts import AccountStore
from broker.demo import SECRETS_FILE, ensure_demo_accounts
from yiwang.cli import app


def test_demo_accounts_are_created_once_and_reused(tmp_path: Path) -> None:
    first = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    assert sorted(first.store.usernames()) == ["fleet.zhuganxiang", "svc.alerts", "svc.ingest"]
    again = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    assert again.fleets["zhuganxiang"] == first.fleets["zhuganxiang"]
    assert again.services == first.services
    secrets = tmp_path / SECRETS_FILE
    assert secrets.stat().st_mode & 0o077 == 0
    assert json.loads(secrets.read_text())["svc.ingest"] == first.services["ingest"].password


def test_an_account_whose_password_no_longer_verifies_is_rotated(tmp_path: Path) -> None:
    first = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    AccountStore(tmp_path).add_service("ingest", rotate=True)  # someone rotated it by hand
    repaired = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    assert repaired.services["ingest"] != first.services["ingest"]
    assert repaired.store.verify("svc.ingest", repaired.services["ingest"].password)
    assert repaired.services["alerts"] == first.services["alerts"]


def test_the_broker_refuses_to_run_without_accounts(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["broker", "--embedded", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no broker accounts" in result.output
