"""``/api/v1/supervision``: the orders of a generated month (``tests/cases/kpi_month.py``) in two towns,
manual orders and their answers, the monthly 通报, and each role's access — on SQLite and PostgreSQL.

The month's automatic orders (all long overdue by now, none answered): case 1 against enforcement;
case 7 twice (levels 1 and 2) and case 11 once against yuehe. Its 通报 (by hand): yuehe — overdue 7
and 11, returned 5 (handed back by its assignee), 3 orders, 1 escalated; enforcement — overdue 1,
returned 2 (the call returned), 1 order. Town B has none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import accounts
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import audited, auth
from tests.api.two_towns import TOWN_A, TOWN_B, Seeded
from tests.cases.kpi_month import generate_month

NOVEMBER = {"month": "2026-11"}


@pytest.fixture(scope="module")
def month(towns: Seeded) -> dict[int, int]:
    db = make_engine(towns.settings.database_url)
    try:
        return generate_month(db, CasePolicy.load(towns.settings.config_dir))
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def api(towns_api: TestClient, month: dict[int, int]) -> TestClient:
    return towns_api


@pytest.fixture(scope="module")
def tokens(towns: Seeded) -> dict[str, str]:
    """The seeded roles' tokens, an inspector's and an enforcement handler's."""
    db = make_engine(towns.settings.database_url)
    try:
        extra = {
            "inspector": accounts.create_user(db, "sup-jiwei", "pw-sup-jiwei", "inspector"),
            "enforcement": accounts.create_user(
                db, "sup-enf", "pw-sup-enf", "department_handler", department="enforcement"
            ),
        }
        return towns.tokens | {k: accounts.issue_token(db, u) for k, u in extra.items()}
    finally:
        db.dispose()


def _get(api: TestClient, token: str, path: str, **params: Any) -> Any:
    answer = api.get(path, params=params, headers=auth(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _soon(hours: float = 48) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _issue(api: TestClient, token: str, case_id: int, **body: Any) -> Any:
    return api.post(f"/api/v1/cases/{case_id}/supervision", json=body, headers=auth(token))


def test_the_months_orders_with_their_states(
    api: TestClient, tokens: dict[str, str], month: dict[int, int]
) -> None:
    listed = _get(api, tokens["admin"], "/api/v1/supervision", **NOVEMBER)
    assert listed["total"] == 4 and listed["counts"] == {"open": 0, "answered": 0, "overdue": 4}
    by_case = sorted((o["case_id"], o["unit"], o["level"], o["kind"], o["state"]) for o in listed["items"])
    assert by_case == sorted(
        [
            (month[1], "enforcement", 1, "auto", "overdue"),
            (month[7], TOWN_A, 1, "auto", "overdue"),
            (month[7], TOWN_A, 2, "auto", "overdue"),
            (month[11], TOWN_A, 1, "auto", "overdue"),
        ]
    )
    first = next(o for o in listed["items"] if o["case_id"] == month[1])
    # Due a day after it was issued; the unit by name; no answer yet.
    issued, due = (datetime.fromisoformat(first[k]) for k in ("issued_at", "due_at"))
    assert due - issued == timedelta(days=1) and first["unit_name"] == "区综合行政执法局"
    assert first["answer"] is None and first["issued_by"] == "system:sla"
    assert _get(api, tokens["admin"], "/api/v1/supervision", unit=TOWN_A, **NOVEMBER)["total"] == 3
    assert _get(api, tokens["admin"], "/api/v1/supervision", town=TOWN_B, **NOVEMBER)["total"] == 0
    assert _get(api, tokens["admin"], "/api/v1/supervision", state="open", **NOVEMBER)["total"] == 0
    paged = _get(api, tokens["admin"], "/api/v1/supervision", limit=3, offset=3, **NOVEMBER)
    assert len(paged["items"]) == 1 and paged["total"] == 4
    october = _get(api, tokens["admin"], "/api/v1/supervision", month="2026-10")
    assert october["total"] == 0
    window = {"from": "2026-11-11T00:00:00+08:00", "to": "2026-11-12T00:00:00+08:00"}
    assert [o["level"] for o in _get(api, tokens["admin"], "/api/v1/supervision", **window)["items"]] == [1]


def test_the_months_notice_by_unit(api: TestClient, tokens: dict[str, str], month: dict[int, int]) -> None:
    notice = _get(api, tokens["admin"], "/api/v1/supervision/notices", **NOVEMBER)
    assert notice["level"] == "district"
    units = {
        u["unit"]: (
            [c["case_id"] for c in u["overdue"]],
            [c["case_id"] for c in u["returned"]],
            u["orders"],
            u["escalated"],
        )
        for u in notice["units"]
    }
    assert units == {
        TOWN_A: ([month[7], month[11]], [month[5]], 3, 1),
        "enforcement": ([month[1]], [month[2]], 1, 0),
    }
    assert [u["unit"] for u in notice["units"]] == [TOWN_A, "enforcement"]  # most noticed first
    assert notice["units"][0]["unit_name"] == "越河街道"
    # The town's own notice is the same for its cases; town B has nothing; the department sees its own.
    town = _get(api, tokens["town_operator"], "/api/v1/supervision/notices", **NOVEMBER)
    assert (town["level"], town["scope"], len(town["units"])) == ("town", TOWN_A, 2)
    assert _get(api, tokens["town_b"], "/api/v1/supervision/notices", **NOVEMBER)["units"] == []
    enforcement = _get(api, tokens["enforcement"], "/api/v1/supervision/notices", **NOVEMBER)
    assert [(u["unit"], len(u["overdue"]), len(u["returned"])) for u in enforcement["units"]] == [
        ("enforcement", 1, 1)
    ]
    # The monthly report's 通报 lists the same cases: one source, the event log.
    report = api.get("/api/v1/reports/monthly", params=NOVEMBER, headers=auth(tokens["admin"])).text
    assert f"#{month[7]}, #{month[11]}" in report
    # Refusals: the other town's scope, no such scope, a malformed month.
    for who, params, code in (
        ("town_b", {"scope": TOWN_A}, 403),
        ("town_operator", {"scope": "rencheng"}, 403),
        ("building_head", {"scope": TOWN_A}, 403),
        ("admin", {"scope": "nowhere"}, 404),
        ("admin", {"month": "2026-13"}, 422),
        ("admin", {"month": "11/2026"}, 422),
    ):
        answer = api.get("/api/v1/supervision/notices", params=NOVEMBER | params, headers=auth(tokens[who]))
        assert answer.status_code == code, (who, params, answer.text)


def test_a_manual_order_is_validated_naming_the_field(
    api: TestClient, tokens: dict[str, str], month: dict[int, int]
) -> None:
    case = month[25]  # handling in grid g-middle of town A
    district = tokens["district_operator"]
    for body, field in (
        ({"deadline": _soon()}, "reason"),
        ({"reason": "", "deadline": _soon()}, "reason"),
        ({"reason": "x" * 501, "deadline": _soon()}, "reason"),
        ({"reason": "拖延", "deadline": _soon(-1)}, "deadline"),
        ({"reason": "拖延", "deadline": "2030-01-01T00:00:00"}, "deadline"),  # no offset
        ({"reason": "拖延"}, "deadline"),
        ({"reason": "拖延", "deadline": "9999-12-31T23:00:00-05:00"}, "deadline"),  # past the calendar
        ({"reason": "拖延", "deadline": _soon(), "target_unit": "water"}, "target_unit"),
    ):
        answer = _issue(api, district, case, **body)
        assert answer.status_code == 422, (body, answer.text)
        assert [e["loc"][-1] for e in answer.json()["detail"]] == [field], answer.text
    assert _get(api, district, "/api/v1/supervision", case=case)["total"] == 0  # nothing was issued


def test_who_may_issue_and_who_may_answer(
    api: TestClient, tokens: dict[str, str], month: dict[int, int], towns: Seeded
) -> None:
    case = month[24]  # handling in grid g-north of town A: the grid holds it
    body = {"reason": "群众多次反映", "deadline": _soon()}
    # Outside the jurisdiction the case does not exist; inside, a role that may not issue gets 403.
    for who, code in (
        ("town_b", 404),
        ("worker_b", 404),
        ("department_handler", 404),
        ("grid_worker", 403),
        ("building_head", 403),
        ("inspector", 403),
    ):
        assert _issue(api, tokens[who], case, **body).status_code == code, who
    # Outside the jurisdiction the case does not exist, whatever the body holds.
    assert _issue(api, tokens["town_b"], case, reason="x", deadline="2030-01-01T00:00:00").status_code == 404
    # A town supervises its grids, not itself nor a district department.
    assert _issue(api, tokens["town_operator"], case, **body, target_unit=TOWN_A).status_code == 403
    town_order = _issue(api, tokens["town_operator"], case, **body)
    assert town_order.status_code == 201, town_order.text
    order = town_order.json()
    assert (order["unit"], order["kind"], order["state"], order["issued_by"]) == (
        "g-north",
        "manual",
        "open",
        "town_operator",
    )
    district_order = _issue(api, tokens["district_operator"], case, **body, target_unit=TOWN_A).json()
    assert district_order["unit"] == TOWN_A and district_order["reason"] == "群众多次反映"
    # The grid answers the grid's order; the town the town's. Others are refused, and a second answer too.
    answer = {"answer": "已清理通道并回访"}
    for who, code in (
        ("town_b", 404),
        ("department_handler", 404),
        ("town_operator", 403),
        ("inspector", 403),
    ):
        path = f"/api/v1/supervision/{order['id']}/answer"
        assert api.post(path, json=answer, headers=auth(tokens[who])).status_code == code, who
    empty = api.post(
        f"/api/v1/supervision/{order['id']}/answer", json={"answer": ""}, headers=auth(tokens["grid_worker"])
    )
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"][-1] == "answer"
    done = api.post(
        f"/api/v1/supervision/{order['id']}/answer", json=answer, headers=auth(tokens["grid_worker"])
    )
    assert done.status_code == 200, done.text
    answered = done.json()
    assert (answered["state"], answered["answer"], answered["answered_by"]) == (
        "answered",
        "已清理通道并回访",
        "grid_worker",
    )
    assert answered["answered_at"] is not None and not answered["answered_late"]
    again = api.post(
        f"/api/v1/supervision/{order['id']}/answer", json=answer, headers=auth(tokens["grid_worker"])
    )
    assert again.status_code == 409
    town_answer = {"answer": "街道已督促"}
    path = f"/api/v1/supervision/{district_order['id']}/answer"
    assert api.post(path, json=town_answer, headers=auth(tokens["grid_worker"])).status_code == 403
    assert api.post(path, json=town_answer, headers=auth(tokens["town_operator"])).status_code == 200
    # Each role lists the orders of the cases it sees.
    seen = {
        who: _get(api, tokens[who], "/api/v1/supervision", case=case)["total"]
        for who in ("admin", "inspector", "town_operator", "grid_worker", "town_b", "department_handler")
    }
    assert seen == {
        "admin": 2,
        "inspector": 2,
        "town_operator": 2,
        "grid_worker": 2,
        "town_b": 0,
        "department_handler": 0,
    }
    assert api.get("/api/v1/supervision", headers=auth(tokens["building_head"])).status_code == 403
    assert _get(api, tokens["grid_worker"], "/api/v1/supervision", **NOVEMBER)["total"] == 0  # not its grids'
    # The case's timeline carries both orders and both answers, as notes by the people who wrote them.
    events = _get(api, tokens["admin"], f"/api/v1/cases/{case}")["events"]
    notes = [(e["action"], e["actor"], e["note"]) for e in events if e["action"].startswith("supervis")]
    assert notes == [
        ("supervise_manual", "town_operator", "群众多次反映"),
        ("supervise_manual", "district_operator", "群众多次反映"),
        ("supervision_answered", "grid_worker", "已清理通道并回访"),
        ("supervision_answered", "town_operator", "街道已督促"),
    ]
    # Every write is in the audit log, refused ones included, with who asked.
    log = audited(towns.settings, "%/supervision%")
    assert ("town_operator", "POST", f"/api/v1/cases/{case}/supervision", 201) in log
    assert ("grid_worker", "POST", f"/api/v1/supervision/{order['id']}/answer", 200) in log
    assert ("grid_worker", "POST", f"/api/v1/supervision/{order['id']}/answer", 409) in log
    assert ("building_head", "POST", f"/api/v1/cases/{case}/supervision", 403) in log


def test_bad_listing_parameters_are_refused(api: TestClient, tokens: dict[str, str]) -> None:
    for params in (
        {"state": "late"},
        {"month": "2026-1"},
        {"month": "2026-11", "from": "2026-11-01T00:00:00+08:00"},
        {"from": "2026-11-01T00:00:00"},
        {"limit": 501},
        {"unit": "u" * 65},
    ):
        answer = api.get("/api/v1/supervision", params=params, headers=auth(tokens["admin"]))
        assert answer.status_code == 422, (params, answer.text)
