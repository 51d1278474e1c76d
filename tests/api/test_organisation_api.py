"""People and district departments changed through the API: validated, audited, within jurisdiction,
phone numbers never listed, and used by case assignment and call-ups at once."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.conftest import audited, auth

REPORT = {
    "community": "zhuganxiang",
    "grid": "g-north",
    "category": "fire_lane_blocked",
    "description": "占用",
    "location": "x",
}
ORG = "/api/v1/organisation"
NEW_WORKER = {"name": "钱多", "role": "grid_worker", "unit": "g-north", "phone": "139 0000 1234"}


def act(client: TestClient, token: str, case_id: int, action: str, **params: Any) -> Any:
    return client.post(
        f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": action, "params": params}
    )


def test_a_person_is_created_listed_without_phone_and_put_on_duty(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    created = client.put(f"{ORG}/people/qian.duo", headers=auth(token), json=NEW_WORKER)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "username": "qian.duo",
        "name": "钱多",
        "role": "grid_worker",
        "unit": "g-north",
        "leader": False,
        "reports_to": None,
    }
    replaced = client.put(
        f"{ORG}/people/qian.duo", headers=auth(token), json=NEW_WORKER | {"reports_to": "chen.jie"}
    )
    assert replaced.status_code == 200 and replaced.json()["reports_to"] == "chen.jie"

    listing = client.get(ORG, headers=auth(token))
    assert "139 0000 1234" not in listing.text and "phone" not in listing.text
    assert next(p for p in listing.json()["people"] if p["username"] == "qian.duo")["name"] == "钱多"
    detail = client.get(f"{ORG}/people/qian.duo", headers=auth(token)).json()
    assert detail["phone"] == "139 0000 1234"  # district staff manage them: they may see it

    # The new person can go on duty, and assignment without a name then reaches them.
    roster = client.put(
        f"{ORG}/rosters/g-north", headers=auth(token), json={"primary": "qian.duo", "backup": "li.na"}
    )
    assert roster.status_code == 200
    case_id = client.post("/api/v1/cases", json=REPORT, headers=auth(token)).json()["id"]
    for action in ("accept", "verify"):
        assert act(client, token, case_id, action).status_code == 200
    assert act(client, token, case_id, "assign").json()["assignee"] == "qian.duo"

    assert audited(settings, f"{ORG}/people/%") == [
        ("op", "PUT", f"{ORG}/people/qian.duo", 201),
        ("op", "PUT", f"{ORG}/people/qian.duo", 200),
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (NEW_WORKER | {"role": "mayor"}, 422, "role"),
        (NEW_WORKER | {"unit": "g-nowhere"}, 422, "unknown unit 'g-nowhere'"),
        (NEW_WORKER | {"reports_to": "ghost"}, 422, "reports to 'ghost', who is not among people"),
        (
            NEW_WORKER | {"role": "town_operator"},
            422,
            "a town_operator works for a town; 'g-north' is not one",
        ),
        (NEW_WORKER | {"unit": "water"}, 422, "a grid_worker works for a grid; 'water' is a department"),
        (NEW_WORKER | {"role": "department_handler", "unit": "yuehe"}, 422, "works for a department"),
        (NEW_WORKER | {"phone": "call me"}, 422, "phone"),
        (NEW_WORKER | {"salary": 1}, 422, "salary"),
    ],
)
def test_a_person_who_does_not_fit_is_refused_with_the_reason(
    client: TestClient, token: str, body: dict[str, Any], status: int, message: str
) -> None:
    refused = client.put(f"{ORG}/people/qian.duo", headers=auth(token), json=body)
    assert refused.status_code == status
    assert message in refused.text
    assert all(p["username"] != "qian.duo" for p in client.get(ORG, headers=auth(token)).json()["people"])


def test_deactivation_keeps_case_history_and_is_refused_while_someone_relies_on_them(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    case_id = client.post("/api/v1/cases", json=REPORT, headers=auth(token)).json()["id"]
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "wang.wei"})):
        assert act(client, token, case_id, action, **params).status_code == 200

    db = make_engine(settings.database_url)
    wang = accounts.create_user(
        db, "wang.wei", "correct horse", "town_operator", town="yuehe", person="wang.wei"
    )
    wang_token = accounts.issue_token(db, wang)
    db.dispose()
    assert client.get("/api/v1/cases", headers=auth(wang_token)).status_code == 200

    on_roster = client.delete(f"{ORG}/people/li.na", headers=auth(token))
    assert on_roster.status_code == 409 and "g-north" in on_roster.text
    head = client.delete(f"{ORG}/people/liu.yang", headers=auth(token))
    assert head.status_code == 204  # liu.yang only leads water by the leader flag: nothing depends on it

    assert client.delete(f"{ORG}/people/wang.wei", headers=auth(token)).status_code == 204
    # Leaving the organisation ends their account at once: the token they held is refused.
    assert client.get("/api/v1/cases", headers=auth(wang_token)).status_code == 401
    assert client.delete(f"{ORG}/people/wang.wei", headers=auth(token)).status_code == 404
    assert client.get(f"{ORG}/people/wang.wei", headers=auth(token)).status_code == 404
    people = {p["username"] for p in client.get(ORG, headers=auth(token)).json()["people"]}
    assert "wang.wei" not in people and "li.na" in people
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()["assignee"] == "wang.wei"

    # A deactivated person comes back with a PUT.
    back = {"name": "王伟", "role": "town_operator", "unit": "yuehe"}
    assert client.put(f"{ORG}/people/wang.wei", headers=auth(token), json=back).status_code == 201
    # Someone who reports to them now holds them in place.
    assert (
        client.put(
            f"{ORG}/people/qian.duo", headers=auth(token), json=NEW_WORKER | {"reports_to": "wang.wei"}
        ).status_code
        == 201
    )
    held = client.delete(f"{ORG}/people/wang.wei", headers=auth(token))
    assert held.status_code == 409 and "reports to 'wang.wei'" in held.text


def test_a_new_department_takes_call_ups_for_its_categories(client: TestClient, token: str) -> None:
    case_id = client.post("/api/v1/cases", json=REPORT, headers=auth(token)).json()["id"]
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"}), ("sign", {})):
        assert act(client, token, case_id, action, **params).status_code == 200
    call_up = {"department": "traffic", "approved_by": "chen.jie"}
    assert act(client, token, case_id, "call_up", **call_up).status_code == 422  # no such department yet

    body = {"name": "区交通运输局", "categories": ["fire_lane_blocked"]}
    put = client.put(f"{ORG}/departments/traffic", headers=auth(token), json=body)
    assert put.status_code == 200 and put.json() == body | {"id": "traffic", "head": None}
    handler = {"name": "马超", "role": "department_handler", "unit": "traffic"}
    assert client.put(f"{ORG}/people/ma.chao", headers=auth(token), json=handler).status_code == 201
    headed = client.put(f"{ORG}/departments/traffic", headers=auth(token), json=body | {"head": "ma.chao"})
    assert headed.status_code == 200
    department = next(
        d for d in client.get(ORG, headers=auth(token)).json()["departments"] if d["id"] == "traffic"
    )
    assert department["head"] == "ma.chao" and department["categories"] == ["fire_lane_blocked"]

    called = act(client, token, case_id, "call_up", **call_up)
    assert called.status_code == 200 and called.json()["department"] == "traffic"
    # The head holds the department in place.
    assert client.delete(f"{ORG}/people/ma.chao", headers=auth(token)).status_code == 409


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "categories": ["potholes"]}, "unknown categories potholes"),
        ({"name": "x", "categories": ["Not A Code"]}, "categories"),
        ({"name": "x", "head": "li.na"}, "head 'li.na' is not among its people"),
        ({"name": "x", "head": "ghost"}, "head 'ghost' is not among its people"),
        ({"name": ""}, "name"),
    ],
)
def test_a_department_that_does_not_fit_is_refused(
    client: TestClient, token: str, body: dict[str, Any], message: str
) -> None:
    refused = client.put(f"{ORG}/departments/traffic", headers=auth(token), json=body)
    assert refused.status_code == 422 and message in refused.text
    assert client.put(f"{ORG}/departments/yuehe", headers=auth(token), json={"name": "x"}).status_code == 422


def test_only_district_staff_or_the_own_town_change_people(
    client: TestClient, token: str, login: Callable[..., str]
) -> None:
    worker = login("w", "grid_worker", community="zhuganxiang", grid="g-north")
    town = login("t", "town_operator", town="yuehe")
    other_town = login("o", "town_operator", town="elsewhere")
    handler = login("h", "department_handler", department="water")
    put = f"{ORG}/people/qian.duo"
    assert client.put(put, headers=auth(worker), json=NEW_WORKER).status_code == 403
    assert client.put(put, headers=auth(other_town), json=NEW_WORKER).status_code == 403
    assert client.put(put, headers=auth(handler), json=NEW_WORKER).status_code == 403
    assert client.put(put, headers=auth(town), json=NEW_WORKER).status_code == 201
    # The town sees the phone of its own people; a grid worker does not, except their own.
    assert client.get(put, headers=auth(town)).json()["phone"] == "139 0000 1234"
    assert "phone" not in client.get(put, headers=auth(worker)).json()
    # A town may not make district staff, nor move its people into a department, nor change departments.
    supervisor = {"name": "x", "role": "supervisor", "unit": "rencheng"}
    assert client.put(put, headers=auth(town), json=supervisor).status_code == 403
    moved = NEW_WORKER | {"role": "department_handler", "unit": "water"}
    assert client.put(put, headers=auth(town), json=moved).status_code == 403
    assert client.put(f"{ORG}/departments/water", headers=auth(town), json={"name": "x"}).status_code == 403
    assert client.put(f"{ORG}/people/liu.yang", headers=auth(town), json=moved).status_code == 403
    assert client.delete(f"{ORG}/people/liu.yang", headers=auth(town)).status_code == 403
    assert client.delete(put, headers=auth(worker)).status_code == 403
    assert client.delete(put, headers=auth(town)).status_code == 204
    assert client.put(put, headers=auth(token), json=supervisor).status_code == 201  # district staff may
