"""Jurisdiction is enforced in one place: another grid's case does not exist, others' actions are 403."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.conftest import auth

REPORT = {"community": "zhuganxiang", "category": "fire_lane_blocked", "description": "占用", "location": "x"}


@pytest.fixture
def login(settings: ApiSettings, client: TestClient) -> Callable[..., str]:
    db = make_engine(settings.database_url)

    def make(username: str, role: str, **scope: str) -> str:
        user = accounts.create_user(db, username, "pw-" + username, role, **scope)
        return accounts.issue_token(db, user)

    yield make  # type: ignore[misc]
    db.dispose()


def test_each_role_sees_its_own_part(client: TestClient, token: str, login: Callable[..., str]) -> None:
    north = login("north", "grid_worker", community="zhuganxiang", grid="g-north")
    south = login("south", "grid_worker", community="zhuganxiang", grid="g-south")
    town = login("town", "town_operator", town="yuehe")
    water = login("water", "department_handler", department="water")
    north_case = client.post("/api/v1/cases", json=REPORT | {"grid": "g-north"}, headers=auth(north)).json()[
        "id"
    ]
    assert (
        client.post("/api/v1/cases", json=REPORT | {"grid": "g-north"}, headers=auth(south)).status_code
        == 403
    )

    def visible(who: str) -> list[int]:
        return [c["id"] for c in client.get("/api/v1/cases", headers=auth(who)).json()["items"]]

    assert visible(north) == [north_case] and visible(town) == [north_case] and visible(token) == [north_case]
    assert visible(south) == [] and visible(water) == []
    # Another grid's case does not exist for you: 404, never its data.
    for path in (f"/api/v1/cases/{north_case}",):
        response = client.get(path, headers=auth(south))
        assert response.status_code == 404 and "占用" not in response.text
    assert (
        client.post(
            f"/api/v1/cases/{north_case}/actions", headers=auth(south), json={"action": "accept"}
        ).status_code
        == 404
    )
    # Inside the jurisdiction but not your role's action: 403, and nothing changes.
    assert (
        client.post(
            f"/api/v1/cases/{north_case}/actions",
            headers=auth(north),
            json={"action": "void", "params": {"reason": "test"}},
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/cases/{north_case}", headers=auth(north)).json()["state"] == "NEW"
    assert (
        client.post(
            f"/api/v1/cases/{north_case}/actions", headers=auth(north), json={"action": "accept"}
        ).status_code
        == 200
    )
    # Telemetry of another grid's device and another grid's KPIs are out of reach too.
    assert client.get("/api/v1/devices/wl-04/telemetry", headers=auth(north)).status_code == 404
    kpi = {"start": "2026-01-01T00:00:00+08:00", "end": "2027-01-01T00:00:00+08:00"}
    assert (
        client.get(
            "/api/v1/kpis", params=kpi | {"level": "grid", "scope": "g-south"}, headers=auth(north)
        ).status_code
        == 403
    )
    assert (
        client.get(
            "/api/v1/kpis", params=kpi | {"level": "grid", "scope": "g-north"}, headers=auth(north)
        ).status_code
        == 200
    )
    assert client.get("/api/v1/kpis", params=kpi, headers=auth(town)).status_code == 403  # district-wide
    ends = "2030-01-01T00:00:00+08:00"
    assert (
        client.post(
            "/api/v1/silences", headers=auth(north), json={"matchers": {"device": "wl-01"}, "ends_at": ends}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/silences",
            headers=auth(town),
            json={"matchers": {"community": "zhuganxiang"}, "ends_at": ends},
        ).status_code
        == 403  # below the district, a silence names a rule, category or device
    )
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert (
        client.post(
            "/api/v1/silences",
            headers=auth(town),
            json={"matchers": {"community": "zhuganxiang", "category": "flooding"}, "ends_at": soon},
        ).status_code
        == 201
    )


def test_department_sees_only_what_was_called_up_to_it(
    client: TestClient, token: str, login: Callable[..., str]
) -> None:
    enforcement = login("enf", "department_handler", department="enforcement")
    case_id = client.post("/api/v1/cases", json=REPORT | {"grid": "g-middle"}, headers=auth(token)).json()[
        "id"
    ]
    for action, params in (
        ("accept", {}),
        ("verify", {}),
        ("assign", {"assignee": "sun.li"}),
        ("sign", {}),
        ("call_up", {"department": "enforcement", "approved_by": "head"}),
    ):
        assert (
            client.post(
                f"/api/v1/cases/{case_id}/actions",
                headers=auth(token),
                json={"action": action, "params": params},
            ).status_code
            == 200
        )
    assert [c["id"] for c in client.get("/api/v1/cases", headers=auth(enforcement)).json()["items"]] == [
        case_id
    ]
    assert (
        client.post(
            f"/api/v1/cases/{case_id}/actions", headers=auth(enforcement), json={"action": "pass"}
        ).status_code
        == 403
    )
    responded = client.post(
        f"/api/v1/cases/{case_id}/actions", headers=auth(enforcement), json={"action": "respond"}
    )
    assert responded.status_code == 200 and responded.json()["stage"] == "resolve_call"


def test_roles_need_their_jurisdiction(settings: ApiSettings, client: TestClient) -> None:
    db = make_engine(settings.database_url)
    with pytest.raises(ValueError, match="a town_operator needs town"):
        accounts.create_user(db, "x", "pw", "town_operator")
    with pytest.raises(ValueError, match="unknown role"):
        accounts.create_user(db, "y", "pw", "mayor")
    db.dispose()


def test_device_and_gateway_registry_with_status(
    client: TestClient, token: str, settings: ApiSettings, login: Callable[..., str]
) -> None:
    from datetime import UTC, datetime

    from alerts.fleet import record_devices, record_gateway
    from contract import StateMessage

    db = make_engine(settings.database_url)
    record_devices(db, {("zhuganxiang", "wl-01"): int(datetime.now(UTC).timestamp() * 1000)})
    record_gateway(
        db,
        "zhuganxiang",
        "gw-01",
        StateMessage.model_validate(
            {"online": True, "spool": {"depth": 3, "oldest_ts": None}, "modem": {"rsrp": -97.0, "sinr": 11.0}}
        ),
    )
    db.dispose()
    devices = {d["device"]: d for d in client.get("/api/v1/devices", headers=auth(token)).json()["items"]}
    assert len(devices) == 30
    silent = client.get("/api/v1/devices", params={"silent": True, "limit": 5}, headers=auth(token)).json()
    assert (silent["total"], len(silent["items"])) == (29, 5)
    assert devices["wl-01"]["silent"] is False and devices["wl-02"]["silent"] is True
    gateways = {g["gateway"]: g for g in client.get("/api/v1/gateways", headers=auth(token)).json()["items"]}
    assert gateways["gw-01"]["online"] is True and gateways["gw-01"]["state"]["modem"]["rsrp"] == -97.0
    assert gateways["gw-02"]["online"] is None
    south = login("s2", "grid_worker", community="zhuganxiang", grid="g-south")
    assert {d["grid"] for d in client.get("/api/v1/devices", headers=auth(south)).json()["items"]} == {
        "g-south"
    }
    assert [g["gateway"] for g in client.get("/api/v1/gateways", headers=auth(south)).json()["items"]] == [
        "gw-02"
    ]


def test_only_district_staff_or_the_town_change_a_grid_roster(
    client: TestClient, token: str, login: Callable[..., str]
) -> None:
    roster = {"primary": "li.na", "backup": "zhao.lei"}
    worker = login("w", "grid_worker", community="zhuganxiang", grid="g-north")
    town = login("t", "town_operator", town="yuehe")
    assert (
        client.put("/api/v1/organisation/rosters/g-north", headers=auth(worker), json=roster).status_code
        == 403
    )
    assert (
        client.put("/api/v1/organisation/rosters/g-north", headers=auth(town), json=roster).status_code == 200
    )
