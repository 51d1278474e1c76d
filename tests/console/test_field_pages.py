"""The field worker's phone view through the app (SQLite and a real PostgreSQL): a field role lands on
it after sign-in; its tasks are sorted by what falls due first with the countdown in words and the
place by name; the case page offers the role's actions now; the JSON action endpoint takes the same
path as the API (CSRF, jurisdiction, workflow, idempotency) and refuses bad input with a clear answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import accounts
from api.console.field import ACTION_MAX_BYTES
from api.console.i18n import ACTION_NAMES, TEXT
from api.settings import ApiSettings
from cases.models import Case, CaseEvent
from common.db import make_engine
from tests.api.conftest import (  # noqa: F401 - the app on SQLite and PostgreSQL, an operator's token
    api_database_url,
    auth,
    client,
    console_login,
    settings,
    token,
)
from tests.console.test_nothing_raw import problems, visible
from tests.factories import open_flooding_cases

WORKER_PASSWORD = "grid-pass-for-tests"


@pytest.fixture
def field_worker(client: TestClient, settings: ApiSettings) -> TestClient:  # noqa: F811
    """li.na, the north grid's worker, signed in to the console (the client follows no redirects)."""
    db = make_engine(settings.database_url)
    accounts.create_user(
        db, "li.na", WORKER_PASSWORD, "grid_worker", "李娜", community="zhuganxiang", grid="g-north"
    )
    db.dispose()
    answer = console_login(client, "li.na", WORKER_PASSWORD, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/field"
    return client


def report(
    web: TestClient,
    bearer: str,
    grid: str = "g-north",
    text: str = "井盖缺失",
    category: str = "fire_lane_blocked",
) -> int:
    """A case reported in ``grid`` (one per grid and category: a second report would merge into it)."""
    answer = web.post(
        "/api/v1/cases",
        json={"community": "zhuganxiang", "grid": grid, "category": category, "description": text},
        headers=auth(bearer),
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def set_due(config: ApiSettings, case_id: int, due: datetime) -> None:
    db = make_engine(config.database_url)
    with Session(db) as session:
        session.execute(update(Case).where(Case.id == case_id).values(deadline=due, stage_due=None))
        session.commit()
    db.dispose()


def assign_to(web: TestClient, bearer: str, case_id: int, who: str = "li.na") -> None:
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": who})):
        answer = web.post(
            f"/api/v1/cases/{case_id}/actions",
            json={"action": action, "params": params},
            headers=auth(bearer),
        )
        assert answer.status_code == 200, answer.text


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match is not None, html[:400]
    return match.group(1)


def events(config: ApiSettings, case_id: int, action: str) -> list[CaseEvent]:
    db = make_engine(config.database_url)
    with Session(db) as session:
        found = list(
            session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == action))
        )
    db.dispose()
    return found


def test_field_roles_land_on_the_phone_view_and_others_on_the_queue(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    db = make_engine(settings.database_url)
    accounts.create_user(
        db, "zhang.ming", "steward-pass", "street_steward", community="zhuganxiang", grid="g-north"
    )
    accounts.create_user(db, "liu.yang", "handler-pass", "department_handler", department="water")
    db.dispose()
    for username, password, home in (
        ("zhang.ming", "steward-pass", "/console/field"),
        ("liu.yang", "handler-pass", "/console/field"),
        ("op", "correct horse", "/console"),
    ):
        client.cookies.clear()
        answer = console_login(client, username, password, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, home), username


def test_tasks_fall_due_first_with_the_countdown_in_words_and_the_place_by_name(
    field_worker: TestClient,
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    later = report(field_worker, token, text="路灯不亮", category="door_left_open")
    overdue = report(field_worker, token, text="井盖缺失")
    now = datetime.now(UTC)
    set_due(settings, later, now + timedelta(hours=2, minutes=15, seconds=40))
    set_due(settings, overdue, now - timedelta(minutes=20, seconds=30))
    other_grid = report(field_worker, token, grid="g-south")
    open_flooding_cases(settings.database_url, [now])  # a sensor case in g-north, its device located
    page = field_worker.get("/console/field?lang=zh")
    assert page.status_code == 200
    ids = [int(i) for i in re.findall(r'<li class="task[^"]*" data-case-id="(\d+)"', page.text)]
    # The flood must be accepted within 10 minutes: it falls due before the 2 h 15 min one.
    assert len(ids) == 3 and (ids[0], ids[2]) == (overdue, later) and other_grid not in ids
    assert "已超时 20 分" in page.text and "还剩 2 小时 15 分" in page.text
    assert "竹竿巷社区" in page.text and "北区网格" in page.text and "g-north" not in page.text
    flood = ids[1]
    item = page.text.split(f'data-case-id="{flood}"')[1].split("</li>")[0]
    assert re.search(r'href="geo:35\.40\d+,116\.\d+"', item), item
    assert "openstreetmap.org/?mlat=35.40" in item
    english = field_worker.get("/console/field?lang=en").text
    assert "overdue by 20 min" in english and "2 h 15 min left" in english and "My tasks" in english


def test_the_case_offers_what_the_role_may_do_now_and_the_json_action_signs_it(
    field_worker: TestClient,
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    case_id = report(field_worker, token, text="<b>水管</b> 破裂")
    page = field_worker.get(f"/console/field/cases/{case_id}").text
    assert "&lt;b&gt;水管&lt;/b&gt; 破裂" in page  # a description is text, never markup
    assert 'data-action="accept"' in page and 'data-action="sign"' not in page
    assign_to(field_worker, token, case_id)
    page = field_worker.get(f"/console/field/cases/{case_id}").text
    assert 'data-action="sign"' in page and 'data-action="feedback"' not in page
    csrf = csrf_of(page)
    url = f"/console/field/cases/{case_id}/actions"
    assert field_worker.post(url, json={"action": "sign"}).status_code == 403  # no CSRF token
    signed = field_worker.post(url, json={"action": "sign"}, headers={"X-CSRF-Token": csrf})
    assert signed.status_code == 200 and signed.json()["state"] == "HANDLING", signed.text
    page = field_worker.get(f"/console/field/cases/{case_id}").text
    feedback = page.split('data-action="feedback"')[1].split("</form>")[0]
    assert '<input type="file" name="photos" accept="image/*" capture="environment" multiple>' in feedback
    again = field_worker.post(url, json={"action": "sign"}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409 and "sign" in again.json()["detail"]  # the state moved on
    assert len(events(settings, case_id, "sign")) == 1


def test_a_town_operator_on_the_phone_may_extend_and_return_with_reasons(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    db = make_engine(settings.database_url)
    accounts.create_user(db, "wang.wei", "town-pass", "town_operator", town="yuehe")
    db.dispose()
    case_id = report(client, token)
    assign_to(client, token, case_id)
    console_login(client, "wang.wei", "town-pass")
    page = client.get(f"/console/field/cases/{case_id}?lang=en").text
    extend = page.split('data-action="extend"')[1].split("</form>")[0]
    assert 'name="hours" type="number"' in extend and 'name="approved_by"' in extend
    returned = page.split('data-action="return"')[1].split("</form>")[0]
    assert '<textarea name="reason"' in returned and "Return with reasons" in returned
    csrf = csrf_of(page)
    answer = client.post(
        f"/console/field/cases/{case_id}/actions",
        json={"action": "extend", "params": {"hours": 4, "approved_by": "王伟"}, "note": "等待配件"},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 200, answer.text
    assert events(settings, case_id, "extend")[0].data["hours"] == 4


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 422, "Expecting"),
        (b'{"action": "sign", "colour": "red"}', 422, "colour"),
        (b'{"action": "fly"}', 422, "unknown action"),
        (b'{"action": "void", "params": {"reason": "duplicate"}}', 403, "may not void"),
        (b'{"action": "feedback", "params": {"approved_by": "x"}}', 422, "approved_by"),
        (b'{"action": "sign", "note": "' + b"x" * ACTION_MAX_BYTES + b'"}', 413, "bytes"),
    ],
)
def test_bad_input_gets_a_clear_answer_and_changes_nothing(
    field_worker: TestClient,
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
    body: bytes,
    status: int,
    says: str,
) -> None:
    case_id = report(field_worker, token)
    assign_to(field_worker, token, case_id)
    csrf = csrf_of(field_worker.get("/console/field").text)
    answer = field_worker.post(
        f"/console/field/cases/{case_id}/actions",
        content=body,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert answer.status_code == status, answer.text
    assert says in str(answer.json()["detail"])
    db = make_engine(settings.database_url)
    with Session(db) as session:
        assert session.get(Case, case_id).state == "ASSIGNED"  # type: ignore[union-attr]
    db.dispose()


def test_outside_the_jurisdiction_or_signed_out_nothing_is_shown_or_done(
    field_worker: TestClient,
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    south = report(field_worker, token, grid="g-south")
    assign_to(field_worker, token, south, who="wu.min")
    page = field_worker.get(f"/console/field/cases/{south}")
    assert page.status_code == 404 and "不在您的辖区" in page.text and "井盖" not in page.text
    csrf = csrf_of(page.text)
    answer = field_worker.post(
        f"/console/field/cases/{south}/actions", json={"action": "sign"}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 404
    field_worker.cookies.clear()
    gone = field_worker.post(f"/console/field/cases/{south}/actions", json={"action": "sign"})
    assert gone.status_code == 401 and "sign in" in gone.json()["detail"]
    assert field_worker.get("/console/field", follow_redirects=False).headers["location"] == "/console/login"


def test_a_repeated_idempotency_key_applies_the_action_once(
    field_worker: TestClient,
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    case_id = report(field_worker, token)
    assign_to(field_worker, token, case_id)
    headers = {
        "X-CSRF-Token": csrf_of(field_worker.get("/console/field").text),
        "Idempotency-Key": "k-1" * 10,
    }
    url = f"/console/field/cases/{case_id}/actions"
    first = field_worker.post(url, json={"action": "sign"}, headers=headers)
    second = field_worker.post(url, json={"action": "sign"}, headers=headers)
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert len(events(settings, case_id, "sign")) == 1


def test_the_service_worker_is_served_for_the_phone_view_under_a_strict_policy(
    field_worker: TestClient,
) -> None:
    answer = field_worker.get("/console/field/sw.js")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["service-worker-allowed"] == "/console/field"
    assert "caches.open" in answer.text
    page = field_worker.get("/console/field")
    policy: dict[str, Any] = dict(
        p.strip().split(" ", 1) for p in page.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and " style=" not in page.text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_phone_pages_show_words_not_codes(
    field_worker: TestClient,
    token: str,  # noqa: F811
    settings: ApiSettings,  # noqa: F811
    lang: str,
) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    flood = int(re.findall(r'data-case-id="(\d+)"', field_worker.get("/console/field").text)[0])
    assign_to(field_worker, token, flood)
    csrf = csrf_of(field_worker.get(f"/console/field/cases/{flood}").text)
    signed = field_worker.post(
        f"/console/field/cases/{flood}/actions", json={"action": "sign"}, headers={"X-CSRF-Token": csrf}
    )
    assert signed.status_code == 200
    for url in ("/console/field", f"/console/field/cases/{flood}", "/console/field/cases/999999"):
        answer = field_worker.get(url, params={"lang": lang})
        assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in answer.text
        chunks, verbatim = visible(answer.text)
        assert not verbatim and not problems(chunks, lang), (url, problems(chunks, lang))
    words = TEXT[lang]
    page = field_worker.get(f"/console/field/cases/{flood}", params={"lang": lang}).text
    assert words["fld_act_feedback"] in page and words["fld_timeline"] in page
    assert f"<b>{ACTION_NAMES[lang]['sign']}</b>" in page  # the timeline, in words
