"""Return visits over HTTP on SQLite and PostgreSQL: the list (oldest closed first, nothing personal),
the form with the reporter's phone for the visiting role only (and every showing recorded), the
outcomes and what they do to the case and the KPIs, unanswered calls counted, bad input refused
without storing anything; the phone number in no list, export or Open311 answer."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from fastapi.testclient import TestClient

from cases.visits import mask_phone
from tests.api.conftest import auth

PHONE = "13812345678"
CLOSING: tuple[tuple[str, dict[str, str]], ...] = (
    ("accept", {}),
    ("verify", {}),
    ("assign", {"assignee": "li.na"}),
    ("sign", {}),
    ("feedback", {}),
    ("check", {}),
    ("pass", {}),
)


def closed_case(client: TestClient, token: str, description: str, phone: str | None = PHONE) -> int:
    """A resident's report taken through the whole loop to CLOSED by the district operator."""
    report = {
        "community": "zhuganxiang",
        "grid": "g-north",
        "category": "fire_lane_blocked",
        "description": description,
        "location": "3号楼",
    } | ({"reporter_phone": phone} if phone else {})
    created = client.post("/api/v1/cases", json=report, headers=auth(token))
    assert created.status_code == 201, created.text
    case_id = int(created.json()["id"])
    for action, params in CLOSING:
        done = client.post(
            f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": action, "params": params}
        )
        assert done.status_code == 200, (action, done.text)
    assert done.json()["state"] == "CLOSED"
    return case_id


def listed(client: TestClient, token: str) -> list[int]:
    answer = client.get("/api/v1/visits", headers=auth(token))
    assert answer.status_code == 200, answer.text
    return [item["case_id"] for item in answer.json()["items"]]


def test_the_visit_loop(client: TestClient, token: str, login: Callable[..., str]) -> None:
    first = closed_case(client, token, "车辆占用消防通道")
    second = closed_case(client, token, "楼道堆物", phone="13900001111")
    town = login("wang.wei", "town_operator", town="yuehe")

    # The list: oldest closed first, the phone nowhere in it (only whether one was left).
    answer = client.get("/api/v1/visits", headers=auth(town))
    assert answer.status_code == 200
    body = answer.json()
    assert [i["case_id"] for i in body["items"]][:2] == [first, second] and body["total"] >= 2
    assert body["items"][0]["phone_left"] is True and body["items"][0]["unreachable_calls"] == 0
    assert PHONE not in answer.text and "5678" not in answer.text

    # The form: the phone in full for the visiting role, and the showing recorded.
    form = client.get(f"/api/v1/visits/{first}", headers=auth(town))
    assert form.status_code == 200 and form.json()["reporter_phone"] == PHONE
    assert form.json()["max_unreachable"] == 3
    admin = login("root", "admin")
    views = client.get("/api/v1/visits/phone-views", headers=auth(admin), params={"case_id": first}).json()
    assert [(v["viewer"], v["case_id"], v["via"]) for v in views] == [("wang.wei", first, "api")]
    assert client.get("/api/v1/visits/phone-views", headers=auth(town)).status_code == 403

    # Unanswered calls: the case stays awaiting, the calls counted; the third ends the visit.
    for n in (1, 2):
        call = client.post(
            f"/api/v1/visits/{first}",
            headers=auth(town),
            json={"outcome": "unreachable", "note": f"第{n}次无人接听"},
        )
        assert call.status_code == 200 and call.json() == {
            "final": False,
            "state": "CLOSED",
            "unreachable_calls": n,
        }
    assert first in listed(client, town)
    item = next(
        i for i in client.get("/api/v1/visits", headers=auth(town)).json()["items"] if i["case_id"] == first
    )
    assert item["unreachable_calls"] == 2
    third = client.post(f"/api/v1/visits/{first}", headers=auth(town), json={"outcome": "unreachable"})
    assert third.json() == {"final": True, "state": "RETURN_VISIT", "unreachable_calls": 3}
    assert first not in listed(client, town)
    attempts_shown = client.get(f"/api/v1/cases/{first}", headers=auth(town)).json()
    assert [e["data"].get("outcome") for e in attempts_shown["events"] if e["action"] == "visit"] == [
        "unreachable"
    ]

    # Reached: basically satisfied counts as satisfied in the KPIs; unsatisfied reopens the case.
    reached = client.post(
        f"/api/v1/visits/{second}",
        headers=auth(town),
        json={"outcome": "basically_satisfied", "note": "基本满意"},
    )
    assert reached.json() == {"final": True, "state": "RETURN_VISIT", "unreachable_calls": 0}
    unhappy = closed_case(client, token, "噪音扰民", phone="13700002222")
    reopened = client.post(f"/api/v1/visits/{unhappy}", headers=auth(town), json={"outcome": "unsatisfied"})
    assert reopened.json()["state"] == "REOPENED" and unhappy not in listed(client, town)
    kpis = client.get("/api/v1/kpis", headers=auth(token)).json()
    # One basically satisfied, one unsatisfied (the unreachable one counts neither way).
    assert kpis["all_cases"]["satisfaction_rate"] == 0.5

    # Visited cases have no form any more: nobody sees their phone.
    assert client.get(f"/api/v1/visits/{second}", headers=auth(town)).status_code == 409


def test_who_visits_and_where(client: TestClient, token: str, login: Callable[..., str]) -> None:
    case_id = closed_case(client, token, "路灯不亮")
    worker = login("li.na", "grid_worker", community="zhuganxiang", grid="g-north")
    other_town = login("far.away", "town_operator", town="elsewhere")
    for path in ("/api/v1/visits", f"/api/v1/visits/{case_id}"):
        refused = client.get(path, headers=auth(worker))
        assert refused.status_code == 403 and "operators" in refused.json()["detail"]
    assert (
        client.post(
            f"/api/v1/visits/{case_id}", headers=auth(worker), json={"outcome": "satisfied"}
        ).status_code
        == 403
    )
    # Another town's operator: the case does not exist for them, and it is not in their list.
    assert client.get(f"/api/v1/visits/{case_id}", headers=auth(other_town)).status_code == 404
    assert (
        client.post(
            f"/api/v1/visits/{case_id}", headers=auth(other_town), json={"outcome": "satisfied"}
        ).status_code
        == 404
    )
    assert case_id not in listed(client, other_town)
    # The district operator sees it everywhere.
    assert case_id in listed(client, token)


def test_bad_visits_are_refused_and_store_nothing(client: TestClient, token: str) -> None:
    case_id = closed_case(client, token, "井盖缺失")
    for body, names in (
        ({"outcome": "happy"}, "outcome"),
        ({"outcome": "satisfied", "note": "x" * 1001}, "note"),
        ({"outcome": "satisfied", "colour": "red"}, "colour"),
        ({"outcome": "satisfied", "attachments": [1, 2, 3, 4]}, "attachments"),
        ({"outcome": "satisfied", "attachments": [424242]}, "424242"),
        ({}, "outcome"),
    ):
        refused = client.post(f"/api/v1/visits/{case_id}", headers=auth(token), json=body)
        assert refused.status_code == 422, body
        assert names in refused.text, (body, refused.text)
    too_big = client.post(
        f"/api/v1/visits/{case_id}",
        headers=auth(token) | {"Content-Type": "application/json"},
        content=b'{"outcome": "satisfied", "note": "' + b"x" * (2 * 1024 * 1024) + b'"}',
    )
    assert too_big.status_code == 413
    detail = client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()
    assert detail["state"] == "CLOSED" and not [e for e in detail["events"] if e["action"] == "visit"]
    assert client.get(f"/api/v1/visits/{case_id}", headers=auth(token)).json()["attempts"] == []
    # A case that is not closed awaits no visit.
    open_case = client.post(
        "/api/v1/cases",
        headers=auth(token),
        json={
            "community": "zhuganxiang",
            "grid": "g-south",
            "category": "fire_lane_blocked",
            "description": "x",
            "location": "y",
        },
    ).json()["id"]
    assert (
        client.post(
            f"/api/v1/visits/{open_case}", headers=auth(token), json={"outcome": "satisfied"}
        ).status_code
        == 409
    )
    assert client.get(f"/api/v1/visits/{open_case}", headers=auth(token)).status_code == 409
    assert (
        client.post("/api/v1/visits/99999", headers=auth(token), json={"outcome": "satisfied"}).status_code
        == 404
    )


def test_the_phone_stays_out_of_lists_exports_and_open311(client: TestClient, token: str) -> None:
    case_id = closed_case(client, token, "占道经营")
    # Seen once on the form, so the number is known to have been shown somewhere.
    assert client.get(f"/api/v1/visits/{case_id}", headers=auth(token)).json()["reporter_phone"] == PHONE
    for path, params in (
        ("/api/v1/cases", {}),
        (f"/api/v1/cases/{case_id}", {}),
        ("/api/v1/visits", {}),
        ("/api/v1/exports/cases.csv", {}),
        (f"/open311/v2/requests/{case_id}.json", {"api_key": token}),
        ("/open311/v2/requests.json", {"api_key": token}),
        (f"/open311/v2/requests/{case_id}.xml", {"api_key": token}),
    ):
        answer = client.get(path, headers=auth(token), params=params)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert PHONE not in answer.text and "12345678" not in answer.text, path
    workbook = client.get("/api/v1/exports/cases.xlsx", headers=auth(token))
    assert workbook.status_code == 200
    with zipfile.ZipFile(io.BytesIO(workbook.content)) as sheets:
        for name in sheets.namelist():
            assert PHONE.encode() not in sheets.read(name), name


def test_a_masked_phone_tells_numbers_apart_but_cannot_be_called() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("1234567") == "*****67"
    assert mask_phone("") == mask_phone(None) == ""
