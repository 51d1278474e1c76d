"""The console's registry pages: the tree and a community in both languages, forms that carry the
CSRF token and go through registry.editing, refusals shown next to their field, and jurisdiction."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from registry.models import RegistryDevice, RegistryGateway, RegistryGrid
from tests.api.conftest import auth, console_login

COMMUNITY = "/console/registry/zhuganxiang"
NEW = {
    "id": "wl-09",
    "type": "water.level@1",
    "gateway": "gw-02",
    "grid": "g-south",
    "building": "b-05",
    "location": "泵房",
    "lat": "35.4151",
    "lon": "116.5872",
    "installed": "2026-11-02",
    "state": "active",
}


@pytest.fixture
def db(settings: ApiSettings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def signed_in(client: TestClient, db: Engine, username: str, role: str, **scope: str) -> str:
    """Signs ``username`` in to the console; the CSRF token of its session."""
    accounts.create_user(db, username, "pw-" + username, role, **scope)
    assert console_login(client, username, "pw-" + username).status_code == 200
    return csrf_of(client.get("/console/registry").text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_the_tree_and_a_community_in_both_languages(client: TestClient, db: Engine) -> None:
    signed_in(client, db, "chen", "district_operator")
    zh = client.get("/console/registry").text
    assert '<a href="/console/registry">登记台账</a>' in zh  # the nav link
    assert "越河街道" in zh and f'<a href="{COMMUNITY}">竹竿巷社区</a>' in zh
    assert 'data-grid="g-north"' in zh and "b-01" not in zh.split('data-grid="g-north"')[0]
    page = client.get(COMMUNITY).text
    assert '<a href="/console/devices/zhuganxiang/th-0101"><b>th-0101</b></a>' in page
    assert "温湿度" in page and "在用" in page and "坐标 35.40758, 116.58884" in page
    assert "env.th@1" not in page  # the type by its name, never its id
    en = client.get(COMMUNITY, params={"lang": "en"}).text
    assert "Temperature and humidity" in en and "in service" in en and "Coordinates 35.40758" in en
    assert "Register a gateway" in en and "Add a device" in en


def test_a_device_added_by_form_is_in_the_registry_and_the_catalog(
    client: TestClient, db: Engine, token: str
) -> None:
    csrf = signed_in(client, db, "chen", "district_operator")
    form = client.get(f"{COMMUNITY}/devices/new").text
    assert '<option value="water.level@1">' in form and 'value="gw-02"' in form
    assert '<optgroup label="' in form  # buildings listed under their grids
    refused = client.post(f"{COMMUNITY}/devices", data=NEW)  # no CSRF token
    assert refused.status_code == 403
    done = client.post(f"{COMMUNITY}/devices", data={**NEW, "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == COMMUNITY
    with Session(db) as session:
        row = session.get(RegistryDevice, ("zhuganxiang", "wl-09"))
    assert row is not None and (row.grid_id, row.building_id, row.lat) == ("g-south", "b-05", 35.4151)
    # The API runs on the live catalog: the device is there at once.
    listed = client.get("/api/v1/communities/zhuganxiang/devices/wl-09", headers=auth(token))
    assert listed.status_code == 200
    assert 'href="/console/devices/zhuganxiang/wl-09"' in client.get(COMMUNITY).text


@pytest.mark.parametrize(
    ("change", "field", "zh", "en"),
    [
        (
            {"building": "b-01"},
            "building",
            "楼院未通过检查：&#39;b-01&#39; is not a building of grid",
            "Building was refused",
        ),
        ({"lat": "north"}, "lat", "纬度未通过检查：", "Latitude was refused"),
        ({"id": "th-0101"}, "id", "编号未通过检查：community zhuganxiang already has", "Id was refused"),
        ({"type": "smoke@9"}, "type", "设备类型未通过检查：unknown sensor type", "Sensor type was refused"),
    ],
)
def test_a_bad_form_shows_the_error_next_to_its_field(
    client: TestClient, db: Engine, change: dict[str, str], field: str, zh: str, en: str
) -> None:
    csrf = signed_in(client, db, "chen", "district_operator")
    answer = client.post(f"{COMMUNITY}/devices", data={**NEW, **change, "csrf": csrf})
    assert answer.status_code == 422
    assert f'<span class="error" data-error="{field}">{zh}' in answer.text
    assert 'value="泵房"' in answer.text  # what was typed is kept
    english = client.post(f"{COMMUNITY}/devices?lang=en", data={**NEW, **change, "csrf": csrf})
    assert f'<span class="error" data-error="{field}">{en}' in english.text
    with Session(db) as session:
        assert session.get(RegistryDevice, ("zhuganxiang", "wl-09")) is None


def test_moving_maintenance_and_a_retirement_that_needs_confirming(client: TestClient, db: Engine) -> None:
    csrf = signed_in(client, db, "chen", "district_operator")
    url = f"{COMMUNITY}/devices/th-0101"
    edit = client.get(f"{url}/edit").text
    assert 'value="35.40758"' in edit and "确认退役该设备" in edit
    moved = {"csrf": csrf, "gateway": "gw-02", "grid": "g-south", "building": "b-05", "state": "maintenance"}
    assert client.post(url, data=moved, follow_redirects=False).status_code == 303
    with Session(db) as session:
        row = session.get(RegistryDevice, ("zhuganxiang", "th-0101"))
        assert row is not None
        assert (row.gateway_id, row.grid_id, row.building_id, row.state, row.lat) == (
            "gw-02",
            "g-south",
            "b-05",
            "maintenance",
            None,  # the coordinates field was left empty: cleared
        )
    unconfirmed = client.post(url, data={**moved, "state": "retired"})
    assert unconfirmed.status_code == 422
    assert '<span class="error" data-error="state">状态未通过检查：退役设备前请勾选确认' in unconfirmed.text
    confirmed = client.post(url, data={**moved, "state": "retired", "confirm_retire": "yes"})
    assert confirmed.status_code == 200  # followed to the community page
    assert 'data-device="th-0101" data-state="retired"' in confirmed.text and "已退役" in confirmed.text


def test_grids_buildings_and_gateways_are_added_and_refusals_named(client: TestClient, db: Engine) -> None:
    csrf = signed_in(client, db, "chen", "district_operator")
    assert (
        client.post(f"{COMMUNITY}/grids", data={"csrf": csrf, "id": "g-east", "name": "东片"}).status_code
        == 200
    )
    added = client.post(
        f"{COMMUNITY}/buildings", data={"csrf": csrf, "grid": "g-east", "id": "b-07", "name": "七号院"}
    )
    assert (
        'data-grid="g-east">东片 <code translate="no">g-east</code> · 楼院: 七号院 <code translate="no">b-07</code>'
        in added.text
    )
    gateway = client.post(f"{COMMUNITY}/gateways", data={"csrf": csrf, "id": "gw-03", "name": "东区网关"})
    assert 'data-gateway="gw-03"' in gateway.text and "yiwang gateway add" in gateway.text
    again = client.post(f"{COMMUNITY}/grids", data={"csrf": csrf, "id": "g-east", "name": "东片"})
    assert again.status_code == 422
    assert (
        '<span class="error" data-error="id">编号未通过检查：community zhuganxiang already has a grid'
        in again.text
    )
    bad = client.post(f"{COMMUNITY}/gateways", data={"csrf": csrf, "id": "GW 4"})
    assert bad.status_code == 422 and 'data-error="id">编号未通过检查' in bad.text
    with Session(db) as session:
        assert session.get(RegistryGrid, ("zhuganxiang", "g-east")) is not None
        assert session.get(RegistryGateway, ("zhuganxiang", "gw-03")) is not None


def test_each_role_sees_and_changes_only_its_own(client: TestClient, db: Engine) -> None:
    csrf = signed_in(client, db, "li", "grid_worker", community="zhuganxiang", grid="g-north")
    tree = client.get("/console/registry").text
    assert 'data-grid="g-north"' in tree and 'data-grid="g-south"' not in tree
    page = client.get(COMMUNITY).text
    assert 'data-device="th-0101"' in page and 'data-device="th-0501"' not in page
    assert "添加设备" not in page and 'id="form-grid"' not in page  # no forms for a grid worker
    assert client.post(f"{COMMUNITY}/devices", data={**NEW, "csrf": csrf}).status_code == 403
    assert client.get(f"{COMMUNITY}/devices/th-0501/edit").status_code == 403
    client.post("/console/logout", data={"csrf": csrf})
    csrf = signed_in(client, db, "far", "town_operator", town="nanzhang")
    assert "竹竿巷社区" not in client.get("/console/registry").text
    assert client.get(COMMUNITY).status_code == 404
    assert client.post(f"{COMMUNITY}/grids", data={"csrf": csrf, "id": "g-x", "name": "x"}).status_code == 404
    client.post("/console/logout", data={"csrf": csrf})
    csrf = signed_in(client, db, "near", "town_operator", town="yuehe")
    assert (
        client.post(f"{COMMUNITY}/devices", data={**NEW, "csrf": csrf}, follow_redirects=False).status_code
        == 303
    )
