"""The community map as GeoJSON: the demo's grids, buildings, devices with their status and open cases
with their SLA state, each where it belongs; scoped by jurisdiction; served to the console session too,
whose map page keeps the strict Content-Security-Policy (a tile service's origin only on that page)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from alerts.fleet import record_devices
from alerts.models import Alert
from api import accounts
from api.app import create_app
from api.security_headers import CONSOLE_CSP
from api.settings import ApiSettings
from cases.actions import CaseFlow, Report
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import CONFIG, auth, console_login
from tests.factories import open_flooding_cases

MAP = "/api/v1/communities/zhuganxiang/map"
TIANDITU = (
    "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec"
    "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=k"
)


@pytest.fixture
def demo(client: TestClient, token: str, settings: ApiSettings) -> dict[str, Any]:
    """The demo community with a flood case at wl-01, one device heard now, one firing, one in maintenance,
    and a reported case (no device) in the south grid."""
    now = datetime.now(UTC)
    open_flooding_cases(settings.database_url, [now])
    db = make_engine(settings.database_url)
    try:
        record_devices(db, {("zhuganxiang", "th-0101"): int(now.timestamp() * 1000)})
        with Session(db) as session, session.begin():
            session.add(
                Alert(
                    fingerprint="smoke|sm-0201",
                    rule_id="smoke",
                    community="zhuganxiang",
                    grid="g-north",
                    subject="sm-0201",
                    category="fire",
                    severity="critical",
                    status="firing",
                    started_at=now,
                    updated_at=now,
                )
            )
        reported, _ = CaseFlow(db, CasePolicy.load(CONFIG, db)).report(
            Report("zhuganxiang", "g-south", "fire_lane_blocked", "消防通道被占用"), actor="resident"
        )
    finally:
        db.dispose()
    patched = client.patch(
        "/api/v1/communities/zhuganxiang/devices/dc-0201", json={"state": "maintenance"}, headers=auth(token)
    )
    assert patched.status_code == 200, patched.text
    return {"reported": reported}


def _features(collection: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {f["properties"]["id"]: f for f in collection["features"] if f["properties"]["kind"] == kind}


def _inside(point: list[float], ring: list[list[float]], margin: float = 0.0) -> bool:
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return (
        min(lons) - margin <= point[0] <= max(lons) + margin
        and min(lats) - margin <= point[1] <= max(lats) + margin
    )


def test_the_demo_community_is_its_grids_buildings_devices_and_open_cases(
    client: TestClient, token: str, demo: dict[str, Any]
) -> None:
    answer = client.get(MAP, headers=auth(token))
    assert answer.status_code == 200, answer.text
    collection = answer.json()
    assert collection["type"] == "FeatureCollection"
    assert collection["properties"] == {
        "community": "zhuganxiang",
        "name": "竹竿巷社区",
        "unplaced": 0,
        "unplaced_devices": 0,
        "truncated": False,
    }
    grids, buildings = _features(collection, "grid"), _features(collection, "building")
    assert set(grids) == {"g-north", "g-middle", "g-south"}
    assert grids["g-north"]["properties"]["name"] == "北区网格"
    assert {b: f["properties"]["grid"] for b, f in buildings.items()} == {
        "b-01": "g-north",
        "b-02": "g-north",
        "b-03": "g-middle",
        "b-04": "g-middle",
        "b-05": "g-south",
        "b-06": "g-south",
    }
    devices = _features(collection, "device")
    assert len(devices) == 30
    assert {d: devices[d]["properties"]["status"] for d in ("th-0101", "th-0102", "sm-0201", "dc-0201")} == {
        "th-0101": "ok",  # heard just now
        "th-0102": "unknown",  # never heard
        "sm-0201": "alerting",  # a firing alert
        "dc-0201": "maintenance",  # put in maintenance through the registry
    }
    assert {f["properties"]["status"] for f in devices.values()} <= {
        "ok",
        "alerting",
        "unknown",
        "maintenance",
    }
    assert devices["wl-01"]["properties"]["name"] == "地下车库入口"
    assert devices["wl-01"]["properties"]["url"] == "/console/devices/zhuganxiang/wl-01"

    cases = _features(collection, "case")
    assert len(cases) == 2
    flood = next(f for f in cases.values() if f["properties"]["category"] == "flooding")
    assert flood["geometry"]["coordinates"] == devices["wl-01"]["geometry"]["coordinates"]  # its device
    assert flood["properties"]["category_name"] == "积水内涝"
    assert flood["properties"]["status"] == "NEW"
    assert flood["properties"]["sla"] == "due_soon"  # a flood is to be accepted within 10 minutes
    assert flood["properties"]["url"] == f"/console/cases/{flood['properties']['id']}"
    report = cases[str(demo["reported"])]
    assert report["properties"]["device"] is None
    south = grids["g-south"]["geometry"]["coordinates"][0]
    assert _inside(report["geometry"]["coordinates"], south)  # no device, no building: its grid's middle

    english = client.get(MAP, params={"lang": "en"}, headers=auth(token)).json()
    assert {f["properties"].get("category_name") for f in english["features"]} >= {"Flooding"}


def test_every_polygon_is_closed_and_every_point_in_range_and_in_place(
    client: TestClient, token: str, demo: dict[str, Any]
) -> None:
    collection = client.get(MAP, headers=auth(token)).json()
    rings: dict[str, list[list[float]]] = {}
    for feature in collection["features"]:
        geometry = feature["geometry"]
        if geometry["type"] == "Polygon":
            for ring in geometry["coordinates"]:
                assert len(ring) >= 4 and ring[0] == ring[-1], feature["id"]
                for lon, lat in ring:
                    assert -180 <= lon <= 180 and -90 <= lat <= 90
            rings[feature["properties"]["id"]] = geometry["coordinates"][0]
        else:
            assert geometry["type"] == "Point"
            lon, lat = geometry["coordinates"]
            assert -180 <= lon <= 180 and -90 <= lat <= 90
    # The demo is a small neighbourhood of 任城区, 济宁: buildings in their grids, devices at their buildings.
    for feature in collection["features"]:
        props = feature["properties"]
        if props["kind"] == "building":
            assert all(_inside(p, rings[props["grid"]]) for p in feature["geometry"]["coordinates"][0])
        if props["kind"] == "device":
            assert _inside(feature["geometry"]["coordinates"], rings[props["building"]], margin=0.0005)
            lon, lat = feature["geometry"]["coordinates"]
            assert 35.39 < lat < 35.42 and 116.58 < lon < 116.60


def test_a_grid_worker_sees_only_their_grid(
    client: TestClient, demo: dict[str, Any], login: Callable[..., str]
) -> None:
    worker = login("li.na", "grid_worker", community="zhuganxiang", grid="g-north")
    collection = client.get(MAP, headers=auth(worker)).json()
    assert set(_features(collection, "grid")) == {"g-north"}
    assert set(_features(collection, "building")) == {"b-01", "b-02"}
    devices = _features(collection, "device")
    assert len(devices) == 14 and {f["properties"]["grid"] for f in devices.values()} == {"g-north"}
    cases = _features(collection, "case")
    assert [f["properties"]["category"] for f in cases.values()] == ["flooding"]  # not the south's report
    south = login("zhao.lei", "grid_worker", community="zhuganxiang", grid="g-south")
    assert {f["properties"]["grid"] for f in client.get(MAP, headers=auth(south)).json()["features"]} == {
        "g-south"
    }


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("town_operator", {"town": "xinhe-town"}),
        ("grid_worker", {"community": "xinhe", "grid": "xg-north"}),
        ("department_handler", {"department": "water"}),
    ],
)
def test_a_community_outside_the_jurisdiction_does_not_exist(
    client: TestClient, login: Callable[..., str], role: str, scope: dict[str, str]
) -> None:
    outsider = login("outsider", role, **scope)
    answer = client.get(MAP, headers=auth(outsider))
    assert answer.status_code == 404
    assert "zhuganxiang" in answer.json()["detail"] and "features" not in answer.text


def test_unknown_community_no_token_and_a_bad_id(client: TestClient, token: str) -> None:
    assert client.get("/api/v1/communities/nowhere/map", headers=auth(token)).status_code == 404
    assert client.get(MAP).status_code == 401
    assert client.get("/api/v1/communities/Not_An_Id/map", headers=auth(token)).status_code == 422
    assert client.get(MAP, params={"lang": "fr"}, headers=auth(token)).status_code == 422


def test_a_case_with_no_place_is_counted_not_drawn(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    added = client.post(
        "/api/v1/communities/zhuganxiang/grids",
        json={"id": "g-east", "name": "东区网格"},
        headers=auth(token),
    )
    assert added.status_code == 201, added.text
    db = make_engine(settings.database_url)
    try:
        CaseFlow(db, CasePolicy.load(CONFIG, db)).report(
            Report("zhuganxiang", "g-east", "fire_lane_blocked", "东区消防通道"), actor="resident"
        )
    finally:
        db.dispose()
    collection = client.get(MAP, headers=auth(token)).json()
    assert collection["properties"]["unplaced"] == 1
    assert _features(collection, "case") == {}
    assert "g-east" not in _features(collection, "grid")  # a grid without an outline is not drawn


def test_an_overdue_case_says_so(client: TestClient, token: str, settings: ApiSettings) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC) - timedelta(days=30)])
    collection = client.get(MAP, headers=auth(token)).json()
    assert [f["properties"]["sla"] for f in _features(collection, "case").values()] == ["overdue"]


def test_the_console_session_gets_the_same_map(client: TestClient, token: str, demo: dict[str, Any]) -> None:
    api = client.get(MAP, headers=auth(token)).json()
    assert client.get("/console/map/zhuganxiang.geojson", follow_redirects=False).status_code == 303
    console_login(client)  # the token's user, "op"
    console = client.get("/console/map/zhuganxiang.geojson")
    assert console.status_code == 200 and console.json() == api
    assert client.get("/console/map/nowhere.geojson").status_code == 404


def test_the_map_page_speaks_both_languages_and_keeps_the_strict_policy(
    client: TestClient, token: str
) -> None:
    console_login(client)
    index = client.get("/console/map", follow_redirects=False)
    assert index.status_code == 303 and index.headers["location"] == "/console/map/zhuganxiang"
    page = client.get("/console/map/zhuganxiang", params={"lang": "zh"})
    assert page.status_code == 200
    assert "竹竿巷社区 · 社区地图" in page.text and "告警中" in page.text and "即将超时" in page.text
    assert '<a href="/console/map">地图</a>' in page.text  # the nav link
    assert page.headers["content-security-policy"] == CONSOLE_CSP
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    english = client.get("/console/map/zhuganxiang", params={"lang": "en"})
    assert "Community map" in english.text and "In maintenance" in english.text
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_a_tile_service_is_allowed_on_the_map_page_alone(settings: ApiSettings) -> None:
    tiled = ApiSettings.model_validate(
        settings.model_dump() | {"map_tile_url": TIANDITU, "map_tile_subdomains": "01"}
    )
    with TestClient(create_app(tiled)) as client:
        db = make_engine(tiled.database_url)
        accounts.create_user(db, "op", "correct horse", role="district_operator")
        db.dispose()
        console_login(client)
        policy = client.get("/console/map/zhuganxiang").headers["content-security-policy"]
        img_src = next(d for d in policy.split("; ") if d.startswith("img-src"))
        assert img_src == "img-src 'self' data: https://t0.tianditu.gov.cn https://t1.tianditu.gov.cn"
        assert policy.replace(img_src, "img-src 'self' data:") == CONSOLE_CSP
        assert client.get("/console").headers["content-security-policy"] == CONSOLE_CSP
        assert "tianditu" in client.get("/console/map/zhuganxiang").text  # handed to the script


@pytest.mark.parametrize(
    ("url", "subdomains", "message"),
    [
        ("https://evil.example; script-src * /{z}/{x}/{y}.png", "", "is not a host name"),
        ("https://tiles.example/{z}/{x}.png", "", "names {x}, {y} and {z}"),
        ("javascript:alert(1)//{z}/{x}/{y}", "", "is not an http(s) URL template"),
        ("https://user@tiles.example/{z}/{x}/{y}.png", "", "is not an http(s) URL template"),
        ("https://t{s}.tianditu.gov.cn/{z}/{x}/{y}", "", "set YIWANG_MAP_TILE_SUBDOMAINS"),
        ("https://t{s}.tianditu.gov.cn/{z}/{x}/{y}", "0 1", "letters or digits"),
    ],
)
def test_a_tile_url_that_could_loosen_the_policy_is_refused(url: str, subdomains: str, message: str) -> None:
    with pytest.raises(
        ValidationError, match=message.replace("{", r"\{").replace("(", r"\(").replace(")", r"\)")
    ):
        ApiSettings(map_tile_url=url, map_tile_subdomains=subdomains)
