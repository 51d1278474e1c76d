"""The case workflow over HTTP: report, act, 404/409/422, KPIs; personal data stays out."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.api.conftest import auth

REPORT = {
    "community": "zhuganxiang",
    "grid": "g-north",
    "category": "fire_lane_blocked",
    "description": "车辆占用消防通道",
    "location": "3号楼",
    "reporter_phone": "13800000000",
}


def test_report_act_and_read_back(client: TestClient, token: str) -> None:
    created = client.post("/api/v1/cases", json=REPORT, headers=auth(token))
    assert created.status_code == 201
    case_id = created.json()["id"]
    detail = client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()
    assert (detail["state"], detail["source"], detail["stage"], detail["owner_town"]) == (
        "NEW",
        "report",
        "accept",
        "yuehe",
    )
    version = detail["version"]

    accepted = client.post(
        f"/api/v1/cases/{case_id}/actions",
        headers=auth(token),
        json={"action": "accept", "expected_version": version, "note": "已受理"},
    )
    assert accepted.status_code == 200
    body = accepted.json()
    assert body["state"] == "VERIFYING" and body["version"] == version + 1
    assert body["events"][-1] | {"at": None} == {
        "at": None,
        "actor": "op",
        "action": "accept",
        "from_state": "NEW",
        "to_state": "VERIFYING",
        "note": "已受理",
        "data": {"version": version + 1},  # a person's event keeps the version it made (conflicts name it)
    }
    stale = client.post(
        f"/api/v1/cases/{case_id}/actions",
        headers=auth(token),
        json={"action": "verify", "expected_version": version},
    )
    assert stale.status_code == 409 and "version" in stale.json()["detail"]
    illegal = client.post(f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": "pass"})
    assert illegal.status_code == 409
    missing = client.post(
        f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": "void", "params": {}}
    )
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    assert (
        client.post("/api/v1/cases/999/actions", headers=auth(token), json={"action": "accept"}).status_code
        == 404
    )

    # The reporter's phone is kept for the return visit but appears in no response.
    listing = client.get("/api/v1/cases", headers=auth(token)).text
    assert "13800000000" not in listing
    assert "13800000000" not in client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).text


def test_bad_reports_are_422(client: TestClient, token: str) -> None:
    for change in (
        {"grid": "g-nowhere"},
        {"category": "aliens"},
        {"description": ""},
        {"reporter_phone": "call me"},
        {"colour": "red"},
    ):
        assert client.post("/api/v1/cases", json=REPORT | change, headers=auth(token)).status_code == 422


def test_kpis_endpoint(client: TestClient, token: str) -> None:
    client.post("/api/v1/cases", json=REPORT, headers=auth(token))
    now = datetime.now(UTC)
    params = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    district = client.get("/api/v1/kpis", params=params, headers=auth(token)).json()
    assert district["scope"] == "rencheng" and district["all_cases"]["cases"] == 1 and district["calls"] == 0
    town = client.get(
        "/api/v1/kpis", params=params | {"level": "town", "scope": "yuehe"}, headers=auth(token)
    )
    assert town.json()["all_cases"]["cases"] == 1
    assert (
        client.get(
            "/api/v1/kpis", params=params | {"level": "town", "scope": "x"}, headers=auth(token)
        ).status_code
        == 404
    )
    naive = {"start": "2026-01-01T00:00:00", "end": "2026-02-01T00:00:00"}
    assert client.get("/api/v1/kpis", params=naive, headers=auth(token)).status_code == 422
    org = client.get("/api/v1/organisation", headers=auth(token)).json()
    assert org["towns"][0]["communities"] == ["zhuganxiang"]


def test_rosters_are_read_and_changed_through_the_api(client: TestClient, token: str) -> None:
    org = client.get("/api/v1/organisation", headers=auth(token)).json()
    north = next(r for r in org["rosters"] if r["unit"] == "g-north")
    assert (north["primary"], north["backup"]) == ("li.na", "zhao.lei")
    changed = client.put(
        "/api/v1/organisation/rosters/g-north",
        headers=auth(token),
        json={"primary": "li.na", "backup": "zhao.lei", "away": ["li.na"]},
    )
    assert changed.status_code == 200 and changed.json()["on_duty"] == "zhao.lei"
    org = client.get("/api/v1/organisation", headers=auth(token)).json()
    assert next(r for r in org["rosters"] if r["unit"] == "g-north")["away"] == ["li.na"]
    # A case assigned without a name now goes to the backup.
    case_id = client.post("/api/v1/cases", json=REPORT, headers=auth(token)).json()["id"]
    for action in ("accept", "verify", "assign"):
        body = client.post(
            f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": action}
        ).json()
    assert body["assignee"] == "zhao.lei"
    assert (
        client.put(
            "/api/v1/organisation/rosters/g-nowhere",
            headers=auth(token),
            json={"primary": "a", "backup": "b"},
        ).status_code
        == 404
    )
    assert (
        client.put(
            "/api/v1/organisation/rosters/g-north",
            headers=auth(token),
            json={"primary": "ghost", "backup": "zhao.lei"},
        ).status_code
        == 422
    )
