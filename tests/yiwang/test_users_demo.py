"""The demo's accounts: one per role, each bound to a person of the organisation, with a password in the
credentials file next to the demo operator's; a second start gives new passwords and keeps one account
per role."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from api import accounts
from api.demo_accounts import ensure_demo_logins
from cases.policy import CasePolicy
from tests.platform import CONFIG_DIR
from yiwang.schema import create_all


def test_the_demo_has_one_account_per_role(database_url: str, db: Engine, tmp_path: Path) -> None:
    create_all(database_url)
    credentials = tmp_path / "credentials.json"
    operator = accounts.ensure_demo_operator(db, credentials)
    logins = ensure_demo_logins(db, CONFIG_DIR, credentials)

    written = json.loads(credentials.read_text(encoding="utf-8"))
    assert written["username"] == operator["username"] and written["accounts"] == logins
    assert written["grid_worker"] == logins["grid_worker"]
    assert set(logins) == set(accounts.ROLES) - {"district_operator"}  # that one is the demo operator's
    organisation = CasePolicy.load(CONFIG_DIR, db).organisation
    for role, login in logins.items():
        user = accounts.authenticate(db, login["username"], login["password"])
        assert user is not None and user.role == role, role
        account = accounts.find_account(db, login["username"])
        assert account is not None and account.person == login["username"]
        assert organisation.person(login["username"]) is not None, role
    assert logins["grid_worker"]["username"] == "li.na"  # people of the config where the role exists
    assert accounts.find_user(db, logins["grid_worker"]["username"]).grid == "g-north"  # type: ignore[union-attr]
    assert accounts.find_user(db, logins["inspector"]["username"]).role == "inspector"  # type: ignore[union-attr]

    again = ensure_demo_logins(db, CONFIG_DIR, credentials)
    assert {r: v["username"] for r, v in again.items()} == {r: v["username"] for r, v in logins.items()}
    assert accounts.authenticate(db, logins["admin"]["username"], logins["admin"]["password"]) is None
    assert accounts.authenticate(db, again["admin"]["username"], again["admin"]["password"]) is not None
    assert len(accounts.list_accounts(db)) == len(accounts.ROLES)
