"""`yiwang token issue`: an operator gives an integration a token that expires and reaches only its part."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import accounts
from common.db import make_engine
from yiwang.cli import app


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/yiwang.db"
    monkeypatch.setenv("YIWANG_DATABASE_URL", url)
    db = make_engine(url)
    accounts.create_schema(db)
    accounts.create_user(db, "intake", "pw-intake-long-enough", "district_operator")
    db.dispose()
    return url


def test_a_scoped_token_with_an_expiry_is_printed_once(database: str) -> None:
    done = CliRunner().invoke(app, ["token", "issue", "intake", "--scope", "open311", "--days", "30"])
    assert done.exit_code == 0, done.output
    token = done.stdout.strip().splitlines()[0]
    db = make_engine(database)
    try:
        grant = accounts.grant_for_token(db, token)
        (info,) = accounts.list_tokens(db, "intake")
    finally:
        db.dispose()
    assert grant is not None and grant.scope == "open311"
    assert grant.allows("/open311/v2/requests.json") and not grant.allows("/api/v1/cases")
    assert (
        info.expires_at is not None
        and 29.9 < (info.expires_at - info.created_at).total_seconds() / 86400 < 30.1
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["token", "issue", "nobody"], "no account 'nobody'"),
        (["token", "issue", "intake", "--scope", "everything"], "unknown scope 'everything'"),
    ],
)
def test_a_wrong_account_or_scope_is_refused_with_a_reason(database: str, args: list[str], said: str) -> None:
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2
    assert said in done.output
