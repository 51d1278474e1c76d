"""The language chosen on the login page holds: after signing in, after signing out, and in a new
session of the same browser (its own cookie, not the session's)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api import accounts
from api.app import create_app
from api.console.web import LANG_COOKIE
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.conftest import api_database_url, console_login, settings  # noqa: F401

ENGLISH_QUEUE, CHINESE_QUEUE = "Open cases", "待办工单"


def test_english_chosen_on_the_login_page_stays_after_sign_in(settings: ApiSettings) -> None:  # noqa: F811
    with TestClient(create_app(settings)) as client:
        db = make_engine(settings.database_url)
        accounts.create_user(db, "op", "correct horse", role="district_operator")
        db.dispose()
        chosen = client.get("/console/login", params={"lang": "en"})
        assert chosen.cookies.get(LANG_COOKIE) == "en" and "Sign in" in chosen.text
        signed_in = console_login(client)
        assert signed_in.status_code == 200 and ENGLISH_QUEUE in signed_in.text, signed_in.text[:400]
        client.post("/console/logout", data={"csrf": _csrf(client)})
        assert "Sign in" in client.get("/console/login").text  # signing out keeps the language
        # A new session of the same browser: the session cookie is gone, the language cookie is not.
        client.cookies.clear()
        client.cookies.set(LANG_COOKIE, "en")
        assert ENGLISH_QUEUE in console_login(client).text
        # Switching back is remembered as well.
        assert client.get("/console", params={"lang": "zh"}).cookies.get(LANG_COOKIE) == "zh"
        client.cookies.clear()
        client.cookies.set(LANG_COOKIE, "zh")
        assert CHINESE_QUEUE in console_login(client).text


def test_an_unknown_language_falls_back_to_chinese(settings: ApiSettings) -> None:  # noqa: F811
    with TestClient(create_app(settings)) as client:
        client.cookies.set(LANG_COOKIE, "xx")
        page = client.get("/console/login")
        assert 'lang="zh-CN"' in page.text and "登录" in page.text
        assert client.get("/console/login", params={"lang": "fr"}).cookies.get(LANG_COOKIE) is None


def _csrf(client: TestClient) -> str:
    import re

    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/console").text)
    assert match is not None
    return match.group(1)
