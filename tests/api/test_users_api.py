"""Accounts for the organisation's people through the API (#22), on SQLite and a real PostgreSQL: who may
create, list, change, reset and deactivate which accounts; the one-time link; deactivation ending a live
console session and a token at once; assignees chosen from the people of the case's unit.

The district of two towns (``tests/api/two_towns.py``) is shared by the module: every test works on its
own people."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import accounts
from api.account_links import issue_link, redeem
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.conftest import audited, auth, console_login
from tests.api.two_towns import A, Seeded

USERS = "/api/v1/users"
ORG = "/api/v1/organisation"
GOOD_PASSWORD = "plum-river-47-cloud"


def create(client: TestClient, token: str, username: str, **body: Any) -> Any:
    return client.post(USERS, headers=auth(token), json={"username": username, **body})


def link_path(answer: dict[str, Any]) -> str:
    match = re.search(r"/console/welcome/[A-Za-z0-9_-]+$", answer["link"])
    assert match is not None, answer
    return match.group(0)


def set_password(client: TestClient, path: str, password: str, repeat: str | None = None) -> Any:
    """The welcome form as a browser sends it: with the CSRF token of the page."""
    form = client.get(path)
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match is not None, form.text[:400]
    data = {
        "password": password,
        "repeat": password if repeat is None else repeat,
        "csrf": match.group(1),
        "token": path.rsplit("/", 1)[1],
    }
    return client.post("/console/welcome", data=data, follow_redirects=False)


def add_person(client: TestClient, token: str, username: str, **person: str) -> None:
    answer = client.put(f"{ORG}/people/{username}", headers=auth(token), json=person)
    assert answer.status_code in (200, 201), answer.text


def test_an_admin_creates_an_account_and_the_person_sets_a_password_once(
    towns: Seeded, towns_api: TestClient
) -> None:
    admin = towns.tokens["admin"]
    created = create(towns_api, admin, "li.na")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user"] | {"created_at": None} == {
        "username": "li.na",
        "display_name": "李娜",
        "role": "grid_worker",
        "person": "li.na",
        "town": None,
        "community": A,
        "grid": "g-north",
        "department": None,
        "active": True,
        "has_password": False,
        "created_at": None,
    }
    assert body["purpose"] == "welcome" and body["link"].startswith("http://testserver/console/welcome/")
    path = link_path(body)

    with TestClient(towns_api.app) as phone:
        # No password yet: nothing signs in, whatever is typed.
        assert console_login(phone, "li.na", "").status_code in (401, 422)
        assert console_login(phone, "li.na", GOOD_PASSWORD).status_code == 401
        page = phone.get(path)
        assert page.status_code == 200 and "li.na" in page.text and 'name="password"' in page.text
        # A password that breaks a rule, or two that differ: the reason, and the link still works.
        short = set_password(phone, path, "short1")
        assert short.status_code == 422 and "10" in short.text
        with_name = set_password(phone, path, "li.na-is-my-password")
        assert with_name.status_code == 422 and ("用户名" in with_name.text or "username" in with_name.text)
        differ = set_password(phone, path, GOOD_PASSWORD, GOOD_PASSWORD + "x")
        assert differ.status_code == 422 and ("不一致" in differ.text or "differ" in differ.text)
        done = set_password(phone, path, GOOD_PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/console"
        assert phone.get("/console", follow_redirects=False).status_code == 200  # signed in
        # Single use: the same link again is refused, clearly.
        again = phone.get(path)
        assert again.status_code == 410 and ("已经用过" in again.text or "used already" in again.text)
        assert 'name="password"' not in again.text
        assert set_password_refused(phone, path).status_code == 410

    db = make_engine(towns.settings.database_url)
    try:
        assert accounts.authenticate(db, "li.na", GOOD_PASSWORD) is not None
    finally:
        db.dispose()
    listed = {u["username"]: u for u in towns_api.get(USERS, headers=auth(admin)).json()}
    assert listed["li.na"]["has_password"] is True
    # The audit log (read by admins and inspectors) records the posts, never a link's secret.
    posts = audited(towns.settings, "/console/welcome%")
    assert posts and {path for _, _, path, _ in posts} == {"/console/welcome"}
    assert ("li.na", "POST", "/console/welcome", 303) in posts


def set_password_refused(client: TestClient, path: str) -> Any:
    """A post to a used link (with a valid CSRF token of another page): refused, nothing changes."""
    form = client.get("/console/login")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match is not None
    data = {
        "password": "another-password-9",
        "repeat": "another-password-9",
        "csrf": match.group(1),
        "token": path.rsplit("/", 1)[1],
    }
    return client.post("/console/welcome", data=data, follow_redirects=False)


def test_wrong_and_expired_links_are_refused_clearly(towns: Seeded, towns_api: TestClient) -> None:
    admin = towns.tokens["admin"]
    assert create(towns_api, admin, "zheng.hao").status_code == 201
    db = make_engine(towns.settings.database_url)
    try:
        expired = issue_link(db, "zheng.hao", "welcome", "test", lifetime=timedelta(seconds=-1))
    finally:
        db.dispose()
    page = towns_api.get(expired.path + "?lang=en")
    assert page.status_code == 410 and "expired" in page.text and 'name="password"' not in page.text
    assert set_password_refused(towns_api, expired.path).status_code == 410

    for wrong in ("/console/welcome/" + "A" * 43, "/console/welcome/x", "/console/welcome/" + "b" * 600):
        refused = towns_api.get(wrong + "?lang=en")
        assert refused.status_code == 404 and "not valid" in refused.text, wrong
    assert towns_api.get("/console/welcome/" + "A" * 43 + "?lang=zh").text.count("链接无效") == 1


def test_listing_never_shows_a_phone_and_keeps_to_the_town(towns: Seeded, towns_api: TestClient) -> None:
    admin, town_a, town_b = towns.tokens["admin"], towns.tokens["town_operator"], towns.tokens["town_b"]
    phone = "+86 139 0000 2222"
    add_person(towns_api, admin, "sun.li", name="孙丽", role="grid_worker", unit="g-middle", phone=phone)
    assert create(towns_api, town_a, "sun.li").status_code == 201
    add_person(towns_api, admin, "bo.xin", name="薄新", role="grid_worker", unit="xg-south")
    assert create(towns_api, town_b, "bo.xin").status_code == 201

    for token in (admin, town_a, town_b):
        answer = towns_api.get(USERS, headers=auth(token))
        assert answer.status_code == 200
        assert "phone" not in answer.text and "0000 2222" not in answer.text and "hash" not in answer.text
    seen_by_a = {u["username"] for u in towns_api.get(USERS, headers=auth(town_a)).json()}
    seen_by_b = {u["username"] for u in towns_api.get(USERS, headers=auth(town_b)).json()}
    assert "sun.li" in seen_by_a and "bo.xin" not in seen_by_a
    assert "bo.xin" in seen_by_b and "sun.li" not in seen_by_b
    assert "admin" not in seen_by_a  # district accounts are not a town's
    paged = towns_api.get(USERS, headers=auth(admin), params={"limit": 1, "offset": 1}).json()
    assert len(paged) == 1
    assert towns_api.get(USERS, headers=auth(admin), params={"limit": 100_000}).status_code == 422


@pytest.mark.parametrize(
    ("who", "username", "body", "status", "says"),
    [
        ("grid_worker", "zhou.qiang", {}, 403, "grid_worker does not manage accounts"),
        ("department_handler", "zhou.qiang", {}, 403, "does not manage accounts"),
        ("district_operator", "zhou.qiang", {}, 403, "does not manage accounts"),
        ("town_operator", "ma.li", {}, 403, "xg-north is not yours"),  # another town's grid worker
        ("town_operator", "zhou.qiang", {"role": "admin"}, 422, "one of grid_worker, building_head"),
        ("town_operator", "chen.jie", {"role": "admin"}, 422, "'admin' does not suit"),
        ("admin", "nobody.here", {}, 422, "'nobody.here' is not among the organisation's people"),
        ("admin", "zhou.qiang", {"role": "wizard"}, 422, "'wizard' does not suit"),
        ("admin", "zhou.qiang", {"sudo": True}, 422, "sudo"),
        ("admin", "<script>", {}, 422, "username"),
        ("admin", "zhou.qiang", {"role": "x" * 33}, 422, "role"),
    ],
)
def test_who_may_create_which_account(
    towns: Seeded,
    towns_api: TestClient,
    who: str,
    username: str,
    body: dict[str, Any],
    status: int,
    says: str,
) -> None:
    refused = create(towns_api, towns.tokens[who], username, **body)
    assert refused.status_code == status, refused.text
    assert says in refused.text
    listed = {u["username"] for u in towns_api.get(USERS, headers=auth(towns.tokens["admin"])).json()}
    assert username not in listed  # nothing half-made


def test_a_town_operator_may_not_make_an_admin_nor_touch_district_staff(
    towns: Seeded, towns_api: TestClient
) -> None:
    admin, town_a = towns.tokens["admin"], towns.tokens["town_operator"]
    add_person(towns_api, admin, "qin.fang", name="秦芳", role="supervisor", unit="rencheng")
    assert create(towns_api, town_a, "qin.fang").status_code == 403
    assert create(towns_api, town_a, "qin.fang", role="admin").status_code == 403
    made = create(towns_api, admin, "qin.fang", role="admin")
    assert made.status_code == 201 and made.json()["user"]["role"] == "admin"
    for attempt in (
        towns_api.patch(f"{USERS}/qin.fang", headers=auth(town_a), json={"active": False}),
        towns_api.post(f"{USERS}/qin.fang/reset", headers=auth(town_a)),
    ):
        assert attempt.status_code == 403, attempt.text
    # An inspector: a district person's account may be read-only.
    changed = towns_api.patch(f"{USERS}/qin.fang", headers=auth(admin), json={"role": "inspector"})
    assert changed.status_code == 200 and changed.json()["role"] == "inspector"
    assert towns_api.patch(f"{USERS}/ghost", headers=auth(admin), json={"active": False}).status_code == 404
    assert towns_api.patch(f"{USERS}/qin.fang", headers=auth(admin), json={}).status_code == 422


def test_a_town_operator_changes_a_role_within_the_grid_roles(towns: Seeded, towns_api: TestClient) -> None:
    town_a = towns.tokens["town_operator"]
    assert create(towns_api, town_a, "wu.min").status_code == 201
    head = towns_api.patch(f"{USERS}/wu.min", headers=auth(town_a), json={"role": "building_head"})
    assert head.status_code == 200, head.text
    assert (head.json()["role"], head.json()["community"], head.json()["grid"]) == (
        "building_head",
        A,
        "g-south",
    )
    too_high = towns_api.patch(f"{USERS}/wu.min", headers=auth(town_a), json={"role": "town_operator"})
    assert too_high.status_code == 422 and "does not suit" in too_high.text


def _signed_in(app_client: TestClient, settings: ApiSettings, username: str) -> TestClient:
    """A browser of ``username`` with a live console session (the password set through the link)."""
    db = make_engine(settings.database_url)
    try:
        link = issue_link(db, username, "reset", "test")
        redeem(db, link.path.rsplit("/", 1)[1], GOOD_PASSWORD)
    finally:
        db.dispose()
    browser = TestClient(app_client.app)
    assert console_login(browser, username, GOOD_PASSWORD, follow_redirects=False).status_code == 303
    assert browser.get("/console", follow_redirects=False).status_code == 200
    return browser


def test_deactivation_ends_a_live_session_and_a_token_at_once(towns: Seeded, towns_api: TestClient) -> None:
    admin = towns.tokens["admin"]
    assert create(towns_api, admin, "zhao.lei").status_code == 201
    browser = _signed_in(towns_api, towns.settings, "zhao.lei")
    db = make_engine(towns.settings.database_url)
    try:
        user = accounts.find_user(db, "zhao.lei")
        assert user is not None
        token = accounts.issue_token(db, user, "phone")
    finally:
        db.dispose()
    assert towns_api.get("/api/v1/cases", headers=auth(token)).status_code == 200

    off = towns_api.patch(f"{USERS}/zhao.lei", headers=auth(admin), json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    # The very next request of the live session and of the token is refused.
    after = browser.get("/console", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == "/console/login"
    assert towns_api.get("/api/v1/cases", headers=auth(token)).status_code == 401
    assert console_login(browser, "zhao.lei", GOOD_PASSWORD).status_code == 401
    assert towns_api.post(f"{USERS}/zhao.lei/reset", headers=auth(admin)).status_code == 409

    on = towns_api.patch(f"{USERS}/zhao.lei", headers=auth(admin), json={"active": True})
    assert on.status_code == 200 and on.json()["active"] is True
    assert console_login(browser, "zhao.lei", GOOD_PASSWORD, follow_redirects=False).status_code == 303
    assert towns_api.get("/api/v1/cases", headers=auth(token)).status_code == 401  # tokens stay revoked
    browser.close()


def test_nobody_deactivates_their_own_account(towns: Seeded, towns_api: TestClient) -> None:
    refused = towns_api.patch(f"{USERS}/admin", headers=auth(towns.tokens["admin"]), json={"active": False})
    assert refused.status_code == 422 and "your own account" in refused.text


def test_a_reset_ends_the_old_password_and_the_old_link(towns: Seeded, towns_api: TestClient) -> None:
    admin = towns.tokens["admin"]
    first = create(towns_api, admin, "chen.jie").json()
    browser = _signed_in(towns_api, towns.settings, "chen.jie")
    reset = towns_api.post(f"{USERS}/chen.jie/reset", headers=auth(admin))
    assert reset.status_code == 200 and reset.json()["purpose"] == "reset"
    assert browser.get("/console", follow_redirects=False).status_code == 303  # the session ended
    assert console_login(browser, "chen.jie", GOOD_PASSWORD).status_code == 401  # and the password
    assert towns_api.get(link_path(first)).status_code == 410
    with TestClient(towns_api.app) as phone:
        page = phone.get(link_path(reset.json()) + "?lang=en")
        assert page.status_code == 200 and "Choose a new password" in page.text
        assert set_password(phone, link_path(reset.json()), "new-" + GOOD_PASSWORD).status_code == 303
    assert (
        console_login(browser, "chen.jie", "new-" + GOOD_PASSWORD, follow_redirects=False).status_code == 303
    )
    browser.close()


def _filed_case(client: TestClient, token: str, grid: str) -> int:
    reported = client.post(
        "/api/v1/cases",
        headers=auth(token),
        json={"community": A, "grid": grid, "category": "door_left_open", "description": "单元门常开"},
    )
    assert reported.status_code == 201, reported.text
    case_id: int = reported.json()["id"]
    for action in ("accept", "verify"):
        assert act(client, token, case_id, action).status_code == 200
    return case_id


def act(client: TestClient, token: str, case_id: int, action: str, **params: Any) -> Any:
    return client.post(
        f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": action, "params": params}
    )


def test_an_assignee_is_chosen_from_the_people_of_the_cases_unit(
    towns: Seeded, towns_api: TestClient
) -> None:
    token = towns.tokens["admin"]
    case_id = _filed_case(towns_api, token, "g-middle")
    for stranger, why in (
        ("nobody.here", "not among the people of g-middle"),
        ("ma.li", "not among the people of g-middle"),  # a grid worker of another town
        ("liu.yang", "not among the people of g-middle"),  # a department's handler
        ("<b>x</b>", "not among the people"),
    ):
        refused = act(towns_api, token, case_id, "assign", assignee=stranger)
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert repr(stranger) in detail and why in detail and "sun.li (孙丽)" in detail
    case = towns_api.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()
    assert case["state"] == "FILED" and case["assignee"] is None  # nothing of the refused ones happened
    assert all(e["action"] != "assign" for e in case["events"])

    assigned = act(towns_api, token, case_id, "assign", assignee="zhou.qiang")
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "zhou.qiang"
    assert act(towns_api, token, case_id, "sign").status_code == 200
    # A call-up names a handler of the department called, no one else.
    wrong = act(
        towns_api, token, case_id, "call_up", department="water", approved_by="head", assignee="li.na"
    )
    assert wrong.status_code == 422 and "not among the people of water" in wrong.json()["detail"]
    right = act(
        towns_api, token, case_id, "call_up", department="water", approved_by="head", assignee="liu.yang"
    )
    assert right.status_code == 200 and right.json()["assignee"] == "liu.yang"


def test_assign_without_a_name_still_takes_whoever_is_on_duty(towns: Seeded, towns_api: TestClient) -> None:
    token = towns.tokens["admin"]
    case_id = _filed_case(towns_api, token, "g-south")
    assigned = act(towns_api, token, case_id, "assign")
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "wu.min"
