"""The console's visit pages, as a browser sends them (session and CSRF), on SQLite and PostgreSQL: the
list without phone numbers, the form with the phone for the visiting role (recorded), outcomes,
errors in words, and nothing for other roles."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import accounts
from api.settings import ApiSettings
from cases.visit_models import ReporterPhoneView
from common.db import make_engine
from tests.api.conftest import auth, console_login
from tests.api.test_visits_api import PHONE, closed_case
from tests.console.test_nothing_raw import problems, visible


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def sign_in(client: TestClient, settings: ApiSettings, username: str, role: str, **scope: str) -> None:
    db = make_engine(settings.database_url)
    accounts.create_user(db, username, "pw-" + username, role, **scope)
    db.dispose()
    assert console_login(client, username, "pw-" + username).status_code in (200, 303)


def test_a_town_operator_visits_through_the_console(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    case_id = closed_case(client, token, "<i>楼道</i> **堆物**")
    sign_in(client, settings, "wang.wei", "town_operator", town="yuehe")

    listing = client.get("/console/visits")
    assert listing.status_code == 200
    assert 'id="nav-visits"' in listing.text and f'data-case="{case_id}"' in listing.text
    assert PHONE not in listing.text and "5678" not in listing.text
    assert "<i>楼道</i>" not in listing.text  # the resident's words, escaped

    form = client.get(f"/console/visits/{case_id}")
    assert form.status_code == 200 and f'href="tel:{PHONE}"' in form.text
    assert "基本满意" in form.text and "联系不上" in form.text
    db = make_engine(settings.database_url)
    with Session(db) as session:
        seen = session.execute(select(ReporterPhoneView.viewer, ReporterPhoneView.via)).all()
    db.dispose()
    assert [tuple(row) for row in seen] == [("wang.wei", "console")]

    # Both pages in both languages: words, never codes, ids or reprs (the resident's words stay).
    for lang in ("en", "zh"):  # Chinese last: the session keeps it for what follows
        for path in ("/console/visits", f"/console/visits/{case_id}"):
            chunks, _ = visible(client.get(path, params={"lang": lang}).text)
            assert not problems(chunks, lang, ("wang.wei", "<i>楼道</i> **堆物**")), (path, lang)

    # Bad input: words on the form, nothing stored; a missing CSRF token is refused.
    bad = client.post(f"/console/visits/{case_id}", data={"csrf": csrf_of(form.text), "outcome": "happy"})
    assert bad.status_code == 422 and "请选择一个回访结果" in bad.text
    assert client.post(f"/console/visits/{case_id}", data={"outcome": "satisfied"}).status_code == 403

    # Unreachable once: back on the form, told to try later; then unsatisfied reopens the case.
    retry = client.post(
        f"/console/visits/{case_id}",
        data={"csrf": csrf_of(form.text), "outcome": "unreachable", "note": "无人接听"},
        follow_redirects=True,
    )
    assert retry.status_code == 200 and "已记录第 1 次联系不上" in retry.text and "无人接听" in retry.text
    done = client.post(
        f"/console/visits/{case_id}",
        data={"csrf": csrf_of(form.text), "outcome": "unsatisfied", "note": "仍有堆物"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "案件已重新办理" in done.text
    assert f'data-case="{case_id}"' not in done.text
    state = client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()["state"]
    assert state == "REOPENED"
    # The case awaits no visit now: the form says so, with no phone.
    gone = client.get(f"/console/visits/{case_id}?lang=en")
    assert gone.status_code == 409 and "no longer awaits" in gone.text and PHONE not in gone.text


def test_other_roles_get_no_visit_pages(
    client: TestClient, token: str, settings: ApiSettings, login: Callable[..., str]
) -> None:
    case_id = closed_case(client, token, "路灯")
    sign_in(client, settings, "li.na", "grid_worker", community="zhuganxiang", grid="g-north")
    home = client.get("/console")
    assert 'id="nav-visits"' not in home.text and 'id="bell"' in home.text
    for path in ("/console/visits", f"/console/visits/{case_id}"):
        refused = client.get(path + "?lang=en")
        assert refused.status_code == 403 and "platform operators" in refused.text
        assert PHONE not in refused.text
