"""The registry through the API: devices added, moved, put in maintenance and retired while running,
places added under their parents, each refusal naming its field, jurisdiction kept, every write audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from tests.api.conftest import audited, auth

NEW_DEVICE = {
    "community": "zhuganxiang",
    "id": "wl-09",
    "type": "water.level@1",
    "gateway": "gw-02",
    "grid": "g-south",
    "building": "b-05",
    "location": "地下车库",
    "lat": 35.4151,
    "lon": 116.5872,
}
SQUARE = [[[116.58, 35.41], [116.59, 35.41], [116.59, 35.42], [116.58, 35.41]]]
DEVICE_URL = "/api/v1/communities/zhuganxiang/devices/wl-09"


def _listed(client: TestClient, token: str) -> dict[str, Any]:
    page = client.get("/api/v1/devices", params={"limit": 500}, headers=auth(token)).json()
    return {d["device"]: d for d in page["items"]}


def test_a_device_added_through_the_api_is_in_the_catalog_at_once(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    created = client.post("/api/v1/devices", json=NEW_DEVICE, headers=auth(token))
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "active"
    listed = _listed(client, token)
    assert listed["wl-09"]["grid"] == "g-south" and listed["wl-09"]["type"] == "water.level@1"
    moved = client.patch(DEVICE_URL, json={"grid": "g-middle"}, headers=auth(token))
    assert moved.status_code == 200, moved.text
    assert (moved.json()["grid"], moved.json()["building"]) == ("g-middle", None)
    assert _listed(client, token)["wl-09"]["grid"] == "g-middle"
    assert client.patch(DEVICE_URL, json={"state": "maintenance"}, headers=auth(token)).json()["state"] == (
        "maintenance"
    )
    assert client.patch(DEVICE_URL, json={"state": "retired"}, headers=auth(token)).status_code == 200
    back = client.patch(DEVICE_URL, json={"state": "active"}, headers=auth(token))
    assert back.status_code == 422 and "a retired device stays retired" in back.text
    writes = [(m, p, s) for _, m, p, s in audited(settings, "/api/v1/%devices%")]
    assert ("POST", "/api/v1/devices", 201) in writes
    assert writes.count(("PATCH", DEVICE_URL, 200)) == 3


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"type": "air.co9@1"}, "type", "unknown sensor type 'air.co9@1'"),
        ({"id": "th-0101"}, "id", "already has a device 'th-0101'"),
        ({"gateway": "gw-77"}, "gateway", "'gw-77' is not a gateway of community zhuganxiang"),
        ({"grid": "g-east"}, "grid", "'g-east' is not a grid of community zhuganxiang"),
        ({"lat": 95.0}, "lat", "latitude 95.0 is outside -90..90"),
        ({"building": "b-01"}, "building", "'b-01' is not a building of grid 'g-south'"),
    ],
)
def test_a_bad_device_is_a_422_naming_the_field(
    client: TestClient, token: str, change: dict[str, Any], field: str, message: str
) -> None:
    answer = client.post("/api/v1/devices", json=NEW_DEVICE | change, headers=auth(token))
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"][-1] == field and message in error["msg"]
    assert "wl-09" not in _listed(client, token)


def test_an_unknown_community_is_a_404(client: TestClient, token: str) -> None:
    answer = client.post("/api/v1/devices", json=NEW_DEVICE | {"community": "atlantis"}, headers=auth(token))
    assert answer.status_code == 404 and "'atlantis' is not in the registry" in answer.text


def test_places_are_added_under_their_parents_by_whom_may(
    client: TestClient, token: str, login: Callable[..., str]
) -> None:
    admin = login("root", "admin")
    assert (
        client.post(
            "/api/v1/towns", json={"id": "nanzhang", "name": "南张街道"}, headers=auth(token)
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/towns", json={"id": "nanzhang", "name": "南张街道"}, headers=auth(admin)
        ).status_code
        == 201
    )
    community = {"id": "liuxing", "name": "柳行社区", "town": "nanzhang"}
    assert client.post("/api/v1/communities", json=community, headers=auth(token)).status_code == 201
    grid = {"id": "g-north", "name": "北网格", "polygon": SQUARE}
    assert client.post("/api/v1/communities/liuxing/grids", json=grid, headers=auth(token)).status_code == 201
    open_ring = {"id": "g-west", "name": "西网格", "polygon": [SQUARE[0][:-1]]}
    refused = client.post("/api/v1/communities/liuxing/grids", json=open_ring, headers=auth(token))
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "polygon"
    building = client.post(
        "/api/v1/communities/liuxing/grids/g-north/buildings",
        json={"id": "b-01", "name": "1号楼"},
        headers=auth(token),
    )
    assert building.status_code == 201
    gateway = client.post(
        "/api/v1/gateways", json={"community": "liuxing", "id": "gw-01"}, headers=auth(token)
    )
    assert gateway.status_code == 422 and "already registered in community zhuganxiang" in gateway.text
    grids = client.get("/api/v1/communities/liuxing/grids", headers=auth(token)).json()
    assert grids == [
        {
            "community": "liuxing",
            "id": "g-north",
            "name": "北网格",
            "polygon": SQUARE,
            "buildings": [{"id": "b-01", "name": "1号楼", "polygon": None}],
        }
    ]
    towns = {t["id"]: t["communities"] for t in client.get("/api/v1/towns", headers=auth(token)).json()}
    assert towns == {"yuehe": 1, "nanzhang": 1}


def test_each_role_changes_only_its_own(client: TestClient, login: Callable[..., str]) -> None:
    other_town = login("far", "town_operator", town="nanzhang")
    own_town = login("near", "town_operator", town="yuehe")
    worker = login("li", "grid_worker", community="zhuganxiang", grid="g-north")
    for who in (other_town, worker):
        assert client.post("/api/v1/devices", json=NEW_DEVICE, headers=auth(who)).status_code == 403
    assert client.post("/api/v1/devices", json=NEW_DEVICE, headers=auth(own_town)).status_code == 201
    assert client.get(DEVICE_URL, headers=auth(worker)).status_code == 404  # another grid's device
    grids = client.get("/api/v1/communities/zhuganxiang/grids", headers=auth(worker)).json()
    assert [g["id"] for g in grids] == ["g-north"]
    assert client.get("/api/v1/communities", headers=auth(other_town)).json() == []
    assert client.get("/api/v1/communities/zhuganxiang/grids", headers=auth(other_town)).status_code == 404


def test_a_device_placed_on_a_bus_through_the_api(client: TestClient, token: str) -> None:
    bus = {"id": "rs485", "kind": "modbus_rtu", "port": "/dev/ttyS1"}
    added = client.post("/api/v1/gateways/zhuganxiang/gw-02/buses", json=bus, headers=auth(token))
    assert added.status_code == 201, added.text
    placed = NEW_DEVICE | {"bus": "rs485", "unit": 7, "poll_s": 5}
    created = client.post("/api/v1/devices", json=placed, headers=auth(token))
    assert created.status_code == 201, created.text
    assert (created.json()["bus"], created.json()["unit"], created.json()["poll_s"]) == ("rs485", 7, 5)
    twin = client.post("/api/v1/devices", json=placed | {"id": "wl-10"}, headers=auth(token))
    assert twin.status_code == 422 and twin.json()["detail"][0]["loc"][-1] == "unit"
    assert "already device 'wl-09'" in twin.text
    moved = client.patch(DEVICE_URL, json={"unit": 8}, headers=auth(token))
    assert moved.status_code == 200 and moved.json()["unit"] == 8
