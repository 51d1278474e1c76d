"""A field worker asks, the office answers (#22), through the HTTP API on SQLite and a real PostgreSQL:
the assignee requests an extension or a return (no state change, recorded as events); the case's
approvers (its town's operators, district staff) approve — the existing ``extend`` / ``return`` with
the request's hours or reason and themselves as ``approved_by`` — or refuse with a reason; an answered
or overtaken request waits no more. Nobody answers their own request, a worker approves nothing, and
another town's operator finds no case at all. Both sides are told in-app."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.accounts import User
from api.scope import may_answer_request, may_take
from tests.api.conftest import (  # noqa: F401 - the app on SQLite and PostgreSQL, an operator's token
    api_database_url,
    auth,
    client,
    login,
    settings,
    token,
)

NORTH = {"community": "zhuganxiang", "grid": "g-north"}


def act(web: TestClient, bearer: str, case_id: int, action: str, note: str = "", **params: Any) -> Response:
    answer: Response = web.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": action, "params": params, "note": note},
        headers=auth(bearer),
    )
    return answer


def ok(answer: Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def assigned_case(
    web: TestClient,
    operator: str,
    who: str = "li.na",
    sign: str | None = None,
    category: str = "fire_lane_blocked",
) -> int:
    """A reported case of the north grid, assigned to ``who`` (and signed for with ``sign``'s token);
    one per category (a second report of a grid and category would merge into the first)."""
    answer = web.post(
        "/api/v1/cases",
        json={**NORTH, "category": category, "description": "消防通道被占"},
        headers=auth(operator),
    )
    assert answer.status_code == 201, answer.text
    case_id = int(answer.json()["id"])
    ok(act(web, operator, case_id, "accept"))
    ok(act(web, operator, case_id, "verify"))
    ok(act(web, operator, case_id, "assign", assignee=who))
    if sign:
        ok(act(web, sign, case_id, "sign"))
    return case_id


def events(detail: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [e for e in detail["events"] if e["action"] == action]


def bell(web: TestClient, bearer: str, kind: str) -> list[dict[str, Any]]:
    """The user's in-app notifications of ``kind`` (the bell sweeps at most once a second: waited for)."""
    found: list[dict[str, Any]] = []
    for _ in range(30):
        answer = web.get("/api/v1/notifications?lang=en", headers=auth(bearer))
        assert answer.status_code == 200, answer.text
        found = [n for n in answer.json()["items"] if n["kind"] == kind]
        if found:
            return found
        time.sleep(0.2)
    return found


@pytest.fixture
def people(client: TestClient, token: str, login: Any) -> dict[str, str]:  # noqa: F811
    """Tokens: the district operator, the north grid's two workers, the town's operator (王伟, of the
    organisation), and an operator of another town."""
    return {
        "op": token,
        "li.na": login("li.na", "grid_worker", **NORTH),
        "zhao.lei": login("zhao.lei", "grid_worker", **NORTH),
        "wang.wei": login("wang.wei", "town_operator", town="yuehe"),
        "other.town": login("other.town", "town_operator", town="xinhe-town"),
    }


def test_an_extension_requested_on_foot_is_approved_by_the_town_with_what_was_asked(
    client: TestClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    case_id = assigned_case(client, people["op"], sign=people["li.na"])
    before = ok(client.get(f"/api/v1/cases/{case_id}", headers=auth(people["op"])))

    asked = ok(
        act(client, people["li.na"], case_id, "request_extension", "等配件", hours=24, reason="等待配件")
    )
    assert (asked["state"], asked["deadline"]) == ("HANDLING", before["deadline"])  # asking moves nothing
    request = events(asked, "request_extension")[0]["data"]
    assert (request["hours"], request["reason"]) == (24, "等待配件")
    # What waits, as an approver's client reads it from the case.
    [waiting] = ok(client.get(f"/api/v1/cases/{case_id}", headers=auth(people["wang.wei"])))[
        "waiting_requests"
    ]
    assert {k: waiting[k] for k in ("action", "answer_with", "asked_by", "params")} == {
        "action": "request_extension",
        "answer_with": ["extend", "refuse_request"],
        "asked_by": "li.na",
        "params": {"hours": 24, "reason": "等待配件"},
    }

    # The worker approves nothing, their own request least of all; another grid worker asks nothing.
    refused = act(client, people["li.na"], case_id, "extend", on_request=True)
    assert refused.status_code == 403 and "may not extend" in refused.json()["detail"]
    not_theirs = act(client, people["zhao.lei"], case_id, "request_return", reason="not_my_grid")
    assert not_theirs.status_code == 422 and "only the case's assignee (li.na)" in not_theirs.json()["detail"]
    # Outside the town the case does not exist, whatever is asked.
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth(people["other.town"])).status_code == 404
    assert act(client, people["other.town"], case_id, "extend", on_request=True).status_code == 404

    # The approver takes what was asked: other hours or another approver's name is refused, not applied.
    changed = act(client, people["wang.wei"], case_id, "extend", on_request=True, hours=48)
    assert changed.status_code == 422 and "hours is what was asked (24)" in changed.json()["detail"]
    other_name = act(client, people["wang.wei"], case_id, "extend", on_request=True, approved_by="陈杰")
    assert other_name.status_code == 422 and "approved_by is the approver" in other_name.json()["detail"]
    assert act(client, people["li.na"], case_id, "request_extension", hours=0).status_code == 422

    told = bell(client, people["wang.wei"], "request_extend")
    assert told and f"Case #{case_id}" in told[0]["text"] and "awaits your approval" in told[0]["text"]

    approved = ok(act(client, people["wang.wei"], case_id, "extend", "同意", on_request=True))
    extend = events(approved, "extend")[0]["data"]
    assert {k: extend[k] for k in ("hours", "reason", "approved_by", "requested_by", "on_request")} == {
        "hours": 24,
        "reason": "等待配件",
        "approved_by": "wang.wei",
        "requested_by": "li.na",
        "on_request": True,
    }
    assert datetime.fromisoformat(approved["deadline"]) > datetime.fromisoformat(before["deadline"])
    assert approved["state"] == "HANDLING" and approved["waiting_requests"] == []

    # Answered: nothing waits now, so a second approval (a double click) is a conflict, not a second day.
    again = act(client, people["wang.wei"], case_id, "extend", on_request=True)
    assert again.status_code == 409 and "no pending request_extension" in again.json()["detail"]
    answered = bell(client, people["li.na"], "extend")
    assert answered and "Your extension was approved" in answered[0]["text"]


def test_a_return_is_refused_with_a_reason_then_asked_again_and_approved_by_the_district(
    client: TestClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    case_id = assigned_case(client, people["op"])  # assigned, not yet signed for

    bad = act(client, people["li.na"], case_id, "request_return", reason="elsewhere")
    assert bad.status_code == 422 and "must be one of" in bad.json()["detail"] and "not_my_grid" in bad.text
    ok(act(client, people["li.na"], case_id, "request_return", "楼在隔壁网格", reason="not_my_grid"))

    no_reason = act(client, people["wang.wei"], case_id, "refuse_request", request="request_return")
    assert no_reason.status_code == 422 and "needs reason" in no_reason.json()["detail"]
    wrong_kind = act(
        client, people["wang.wei"], case_id, "refuse_request", request="request_extension", reason="x"
    )
    assert wrong_kind.status_code == 409 and "no pending request_extension" in wrong_kind.json()["detail"]
    refused = ok(
        act(
            client,
            people["wang.wei"],
            case_id,
            "refuse_request",
            request="request_return",
            reason="就在本网格",
        )
    )
    assert refused["state"] == "ASSIGNED"
    assert events(refused, "refuse_request")[0]["data"]["requested_by"] == "li.na"
    told = bell(client, people["li.na"], "refuse_request")
    assert told and "was refused" in told[0]["text"]
    twice = act(client, people["wang.wei"], case_id, "refuse_request", request="request_return", reason="y")
    assert twice.status_code == 409  # refused already: nothing waits

    ok(act(client, people["li.na"], case_id, "sign"))  # signing for it overtakes nothing
    ok(act(client, people["li.na"], case_id, "request_return", "确实不归我们", reason="needs_department"))
    returned = ok(act(client, people["op"], case_id, "return", "转交", on_request=True))
    data = events(returned, "return")[0]["data"]
    assert returned["state"] == "FILED"
    assert (data["reason"], data["approved_by"], data["requested_by"]) == ("needs_department", "op", "li.na")


def test_a_request_overtaken_by_the_case_waits_no_more(
    client: TestClient,  # noqa: F811
    people: dict[str, str],
) -> None:
    case_id = assigned_case(client, people["op"], sign=people["li.na"])
    ok(act(client, people["li.na"], case_id, "request_extension", hours=8, reason="下雨"))
    ok(act(client, people["li.na"], case_id, "feedback", "已清理"))  # the work is done meanwhile
    late = act(client, people["wang.wei"], case_id, "extend", on_request=True)
    assert late.status_code == 409  # the case moved on: not extended behind anyone's back
    detail = ok(client.get(f"/api/v1/cases/{case_id}", headers=auth(people["op"])))
    assert not events(detail, "extend")

    # A direct extension (an operator on the phone to the worker) answers a waiting request too.
    second = assigned_case(
        client, people["op"], who="zhao.lei", sign=people["zhao.lei"], category="door_left_open"
    )
    ok(act(client, people["zhao.lei"], second, "request_extension", hours=4, reason="等物业"))
    ok(act(client, people["op"], second, "extend", hours=6, approved_by="op"))
    assert act(client, people["wang.wei"], second, "extend", on_request=True).status_code == 409


def _user(username: str, role: str) -> User:
    return User(id=1, username=username, display_name=username, role=role)


def test_who_may_answer_a_request() -> None:
    # The approvers: the town's operators, district staff; never the one who asked, never a worker.
    assert may_answer_request(_user("wang.wei", "town_operator"), "request_extension", "li.na")
    assert may_answer_request(_user("op", "district_operator"), "request_return", "li.na")
    assert not may_answer_request(_user("op", "district_operator"), "request_return", "op")
    assert not may_answer_request(_user("zhao.lei", "grid_worker"), "request_extension", "li.na")
    assert not may_answer_request(_user("insp", "inspector"), "request_extension", "li.na")
    assert not may_answer_request(_user("wang.wei", "town_operator"), "feedback", "li.na")
    # Those who work on foot ask; the department handler returns a call-up on its own (call_return).
    for role in ("grid_worker", "building_head", "street_steward"):
        assert may_take(_user("x", role), "request_extension") and may_take(
            _user("x", role), "request_return"
        )
        assert not may_take(_user("x", role), "refuse_request")
