"""Console sessions against the real API process: a stolen cookie dies with the session it belongs to
(sign-out, a password change, the idle lifetime), and the login form cannot be posted from elsewhere."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from api import accounts
from common.db import make_engine
from tests.security.conftest import Console, api_process

pytestmark = pytest.mark.e2e
IDLE_S = 3.0


def login_csrf(client: httpx.Client) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert match is not None, "the login page carries no CSRF token"
    return match.group(1)


def sign_in(
    client: httpx.Client, username: str, password: str, forwarded_for: str | None = None
) -> httpx.Response:
    """The login form as a browser posts it: with the token of the page it was served on."""
    data = {"username": username, "password": password, "csrf": login_csrf(client)}
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/console/login", data=data, headers=headers)


def copy_of(client: httpx.Client) -> httpx.Client:
    """Another browser holding a copy of the victim's cookie."""
    return httpx.Client(base_url=str(client.base_url), cookies=dict(client.cookies), timeout=10)


def signed_in(client: httpx.Client) -> bool:
    answer = client.get("/console")
    if answer.status_code == 303:
        assert answer.headers["location"] == "/console/login"
        return False
    assert answer.status_code == 200, answer.text[:200]
    return True


def _seed(database_url: str) -> None:
    db = make_engine(database_url)
    for name in ("wang.wei", "li.na", "zhao.min"):
        accounts.create_user(db, name, f"{name}-pass", role="town_operator", town="yuehe")
    db.dispose()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    env = {"YIWANG_SESSION_IDLE_S": str(IDLE_S)}
    with api_process(tmp_path_factory.mktemp("sessions"), env, _seed) as console:
        yield console


@pytest.fixture
def victim(console: Console) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.base, timeout=10) as client:
        yield client


def test_a_stolen_cookie_is_dead_once_its_owner_signs_out(victim: httpx.Client) -> None:
    assert sign_in(victim, "wang.wei", "wang.wei-pass").status_code == 303
    with copy_of(victim) as thief:
        assert signed_in(thief)  # the copy works while the session lives
        victim.post("/console/logout")
        assert not signed_in(victim)
        assert not signed_in(thief)


def test_a_password_change_ends_every_session_of_the_account(victim: httpx.Client, console: Console) -> None:
    assert sign_in(victim, "li.na", "li.na-pass").status_code == 303
    with copy_of(victim) as thief:
        assert signed_in(thief)
        db = make_engine(console.database_url)
        accounts.set_password(db, "li.na", "a-new-pass-after-the-theft")
        db.dispose()
        assert not signed_in(thief)
        assert not signed_in(victim)
    assert sign_in(victim, "li.na", "a-new-pass-after-the-theft").status_code == 303
    assert signed_in(victim)


def test_a_session_unused_for_its_idle_lifetime_ends(victim: httpx.Client) -> None:
    assert sign_in(victim, "zhao.min", "zhao.min-pass").status_code == 303
    # Use within the idle lifetime keeps it alive past that lifetime counted from sign-in...
    for _ in range(3):
        time.sleep(IDLE_S / 2)
        assert signed_in(victim)
    with copy_of(victim) as thief:
        time.sleep(IDLE_S + 1)
        assert not signed_in(thief)  # ...an idle one ends, for every copy of the cookie
    assert not signed_in(victim)


def test_the_login_form_needs_the_token_of_its_own_page(console: Console) -> None:
    form = {"username": "wang.wei", "password": "wang.wei-pass"}
    with httpx.Client(base_url=console.base, timeout=10) as browser:
        login_csrf(browser)  # the victim has the login page open; the attacker's page posts to it
        assert browser.post("/console/login", data=form).status_code == 403
        forged = browser.post("/console/login", data=form | {"csrf": "forged-by-another-site"})
        assert forged.status_code == 403
        assert "登录页面已过期" in forged.text  # said in words, on the login page
        assert not signed_in(browser)
        assert browser.post("/console/login", data=form | {"csrf": login_csrf(browser)}).status_code == 303
        assert signed_in(browser)
