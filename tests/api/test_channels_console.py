"""The console's page for public reporting channels (#22), on SQLite and a real PostgreSQL: the list in words
with each channel's report count and never a key; a new channel's key shown once; refusals in the user's
language with the form as it was filled; disabling stops the key at once; only admins and district
operators; CSRF and size limits.

The district of two towns (``tests/api/two_towns.py``) is shared by the module: every test makes channels
of its own names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.console.i18n import TEXT
from cases.public_channels import digest, list_channels
from common.db import make_engine
from tests.api.conftest import audited, console_login
from tests.api.test_public_channels import file
from tests.api.two_towns import TOWN_A, A, B, Seeded
from tests.console.test_nothing_raw import problems, visible

PAGE = "/console/channels"
OPERATOR = "district_operator"
KEY = re.compile(r'id="channel-key" readonly value="(ywc_[A-Za-z0-9_-]+)"')


@contextmanager
def signed_in(towns_api: TestClient, username: str) -> Iterator[TestClient]:
    """A browser of ``username`` (seeded with the password ``pw-<username>``) with a console session.

    Outside ``with``: the module's app is running already, and its lifespan's end would dispose its pool.
    """
    browser = TestClient(towns_api.app)
    try:
        answer = console_login(browser, username, f"pw-{username}", follow_redirects=False)
        assert answer.status_code == 303, answer.text[:300]
        yield browser
    finally:
        browser.close()


def csrf_of(browser: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', browser.get(PAGE).text)
    assert match is not None
    return match.group(1)


def create(browser: TestClient, lang: str = "zh", **fields: Any) -> Response:
    form = {"csrf": csrf_of(browser)} | fields
    answer: Response = browser.post(PAGE, params={"lang": lang}, data=form, follow_redirects=False)
    return answer


def text_of(html: str) -> str:
    return " ".join(visible(html)[0])


def row_of(html: str, name: str) -> str:
    """The visible text of the list's row of the channel called ``name``."""
    for row in re.findall(r'<tr data-channel-id="\d+".*?</tr>', html, re.S):
        if f"<b>{name}</b>" in row:
            return text_of(row)
    raise AssertionError(f"no row for {name!r} in the list")


def channel_named(towns: Seeded, name: str) -> Any:
    db = make_engine(towns.settings.database_url)
    try:
        return next((c for c in list_channels(db) if c.name == name), None)
    finally:
        db.dispose()


def test_a_new_channel_shows_its_key_once_and_the_list_names_places_and_counts(
    towns: Seeded, towns_api: TestClient
) -> None:
    with signed_in(towns_api, OPERATOR) as browser:
        made = create(browser, name="12345 热线", town=TOWN_A, serves_page="on")
        assert made.status_code == 200, made.text[:500]
        match = KEY.search(made.text)
        assert match is not None, made.text[:2000]
        key = match.group(1)
        assert made.headers["cache-control"] == "no-store"
        said = text_of(made.text)
        assert TEXT["zh"]["chn_key_title"] in said and "X-Api-Key" in said and "只显示这一次" in said
        assert made.text.count(key) == 1

        # The key is not on the page again, nor its digest; the row says where it reports, in words.
        again = browser.get(PAGE)
        assert again.status_code == 200
        assert (
            key not in again.text and digest(key) not in again.text and 'id="channel-key"' not in again.text
        )
        row = row_of(again.text, "12345 热线")
        assert "越河街道全部社区" in row and "竹竿巷社区" in row and "公众上报页面" in row, row
        assert "新河社区" not in row and A not in row and TOWN_A not in row
        assert "0 件" in row and "启用" in row

        # A report through the key counts on the row (one grouped query: see reports_per_channel).
        filed = file(towns_api, key)
        assert filed.status_code == 200, filed.text
        assert "1 件" in row_of(browser.get(PAGE).text, "12345 热线")

        # Communities ticked one by one, across both towns: both by name; English words on request.
        ticked = create(browser, "en", name="街道小程序", communities=[A, B])
        assert ticked.status_code == 200 and KEY.search(ticked.text)
        english = browser.get(PAGE, params={"lang": "en"}).text
        row = row_of(english, "街道小程序")
        assert "竹竿巷社区, 新河社区" in row and "Every community" not in row and "Enabled" in row, row
        assert "Every community of 越河街道" in row_of(english, "12345 热线")
        for lang in ("zh", "en"):
            shown = browser.get(PAGE, params={"lang": lang}).text
            assert not problems(visible(shown)[0], lang, tuple(towns.tokens)), lang
            assert "ywc_" not in shown

    # The audit log names who made them.
    assert (OPERATOR, "POST", PAGE, 200) in audited(towns.settings, PAGE)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    ("fields", "key", "english"),
    [
        ({"name": "已有的渠道", "communities": [A]}, "chn_err_taken", "already a channel named"),
        ({"name": "无处上报"}, "chn_err_nowhere", "name the communities"),
        ({"name": "亚特兰蒂斯", "communities": [A, "atlantis"]}, "chn_err_unknown_community", "atlantis"),
        ({"name": "无名街道", "town": "nowhere-town"}, "chn_err_unknown_town", "unknown town"),
        ({"name": "   ", "communities": [A]}, "chn_err_name", "a channel's name"),
    ],
)
def test_a_refused_channel_says_why_in_the_users_language_and_keeps_the_form(
    towns: Seeded, towns_api: TestClient, lang: str, fields: dict[str, Any], key: str, english: str
) -> None:
    with signed_in(towns_api, OPERATOR) as browser:
        if key == "chn_err_taken" and channel_named(towns, "已有的渠道") is None:
            assert create(browser, name="已有的渠道", communities=[B]).status_code == 200
        before = len(re.findall(r'<tr data-channel-id="', browser.get(PAGE).text))
        refused = create(browser, lang, **fields)
        assert refused.status_code == 422, refused.text[:500]
        said = text_of(refused.text)
        assert TEXT[lang][key] in said, said
        assert english not in said and "ywc_" not in refused.text
        assert not problems(visible(refused.text)[0], lang, tuple(towns.tokens))
        # The form again as it was filled: the name, the town and the ticked communities.
        if fields["name"].strip():
            assert f'name="name" required maxlength="64" value="{fields["name"]}"' in refused.text
        if A in fields.get("communities", []):
            assert f'value="{A}" checked' in refused.text
        if fields.get("town") == TOWN_A:
            assert f'value="{TOWN_A}" selected' in refused.text
        after = len(re.findall(r'<tr data-channel-id="', browser.get(PAGE).text))
        assert after == before  # nothing half-made


def test_disabling_stops_the_key_at_once_and_keeps_the_count(towns: Seeded, towns_api: TestClient) -> None:
    with signed_in(towns_api, OPERATOR) as browser:
        made = create(browser, name="待停用的热线", communities=[A])
        match = KEY.search(made.text)
        assert match is not None
        key = match.group(1)
        assert file(towns_api, key).status_code == 200
        channel = channel_named(towns, "待停用的热线")
        page = browser.get(PAGE).text
        assert f'action="/console/channels/{channel.id}/disable"' in page
        assert "立即失效" in page and "保留其来源" in page  # the confirm step says what happens

        done = browser.post(
            f"{PAGE}/{channel.id}/disable", data={"csrf": csrf_of(browser)}, follow_redirects=False
        )
        assert done.status_code == 303 and done.headers["location"] == PAGE
        refused = file(towns_api, key)
        assert refused.status_code == 403 and "is disabled" in refused.json()[0]["description"]
        page = browser.get(PAGE).text
        row = row_of(page, "待停用的热线")
        assert "已停用" in row and "1 件" in row, row
        assert f'action="/console/channels/{channel.id}/disable"' not in page
        assert channel_named(towns, "待停用的热线").enabled is False

        for missing in (999_999, 0, 10**12):
            gone = browser.post(f"{PAGE}/{missing}/disable", data={"csrf": csrf_of(browser)})
            assert gone.status_code == 404 and TEXT["zh"]["chn_err_unknown"] in text_of(gone.text)
    assert (OPERATOR, "POST", f"{PAGE}/{channel.id}/disable", 303) in audited(towns.settings, PAGE + "%")


@pytest.mark.parametrize("username", ["town_operator", "grid_worker"])
def test_only_admins_and_district_operators_manage_channels(
    towns: Seeded, towns_api: TestClient, username: str
) -> None:
    with signed_in(towns_api, OPERATOR) as browser:
        assert create(browser, name=f"不让{username}碰", communities=[A]).status_code == 200
    channel = channel_named(towns, f"不让{username}碰")
    with signed_in(towns_api, username) as other:
        for lang in ("zh", "en"):
            page = other.get(PAGE, params={"lang": lang})
            assert page.status_code == 403
            assert TEXT[lang]["chn_forbidden"] in text_of(page.text)
            assert 'id="create-channel"' not in page.text and f"不让{username}碰" not in page.text
            assert 'id="nav-channels"' not in page.text
        csrf = csrf_of(other)
        made = other.post(PAGE, data={"csrf": csrf, "name": f"{username}的渠道", "communities": [A]})
        assert made.status_code == 403 and "ywc_" not in made.text
        assert channel_named(towns, f"{username}的渠道") is None
        disabled = other.post(f"{PAGE}/{channel.id}/disable", data={"csrf": csrf})
        assert disabled.status_code == 403
        assert channel_named(towns, f"不让{username}碰").enabled is True
    with signed_in(towns_api, "admin") as admin:
        page = admin.get(PAGE)
        assert page.status_code == 200 and 'id="nav-channels"' in page.text and "不让" in page.text
    anonymous = TestClient(towns_api.app)
    away = anonymous.get(PAGE, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/console/login"
    anonymous.close()


def test_forms_without_the_csrf_token_are_refused(towns: Seeded, towns_api: TestClient) -> None:
    with signed_in(towns_api, OPERATOR) as browser:
        assert create(browser, name="有令牌的渠道", communities=[A]).status_code == 200
        channel = channel_named(towns, "有令牌的渠道")
        for csrf in ({}, {"csrf": "not-the-token"}):
            made = browser.post(PAGE, data={"name": "无令牌的渠道", "communities": [A]} | csrf)
            assert made.status_code == 403 and "CSRF" in made.text
            assert browser.post(f"{PAGE}/{channel.id}/disable", data=csrf).status_code == 403
        assert channel_named(towns, "无令牌的渠道") is None
        assert channel_named(towns, "有令牌的渠道").enabled is True


def test_oversized_fields_are_refused_before_anything_is_made(towns: Seeded, towns_api: TestClient) -> None:
    with signed_in(towns_api, OPERATOR) as browser:
        oversized: list[dict[str, Any]] = [
            {"name": "长" * 65, "communities": [A]},
            {"name": "长街道", "town": "t" * 65},
            {"name": "长社区", "communities": ["c" * 65]},
            {"name": "太多社区", "communities": [A] * 201},
            {"name": "长开关", "communities": [A], "serves_page": "x" * 6},
        ]
        for fields in oversized:
            refused = create(browser, **fields)
            assert refused.status_code == 422, fields["name"]
            assert "ywc_" not in refused.text
            assert channel_named(towns, fields["name"]) is None
        # 200 communities is the limit, not beyond it (the same one, named 200 times, is one).
        at_limit = create(browser, name="两百个社区", communities=[A] * 200)
        assert at_limit.status_code == 200 and KEY.search(at_limit.text)
        assert channel_named(towns, "两百个社区").communities == (A,)
