"""The wall's figures and map, on SQLite and PostgreSQL, against the two-town district of the abuse tests.

Cases come in through the real paths (the alert engine, the case flow, Open311, the report route); the
figures are checked against values counted by hand from what the seed and the test put in, and the SLA
split against the map's own Python judgement of each open case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.app import create_app
from api.routes.map import sla_state
from cases.models import OPEN_STATES, Case
from common.db import make_engine
from tests.api.conftest import auth, console_login
from tests.api.two_towns import TOWN_B, A, B, Seeded


@contextmanager
def signed_in(towns: Seeded, username: str) -> Iterator[TestClient]:
    """A console session of one of the seeded accounts (password ``pw-<username>``)."""
    with TestClient(create_app(towns.settings)) as client:
        assert console_login(client, username, "pw-" + username).status_code == 200
        yield client


def _figures(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/console/wall/figures.json", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _open_cases(towns: Seeded, communities: tuple[str, ...]) -> list[Case]:
    db = make_engine(towns.settings.database_url)
    try:
        with Session(db) as session:
            return list(
                session.scalars(
                    select(Case).where(
                        Case.community.in_(communities), Case.state.in_([s.value for s in OPEN_STATES])
                    )
                )
            )
    finally:
        db.dispose()


def test_a_town_operator_sees_their_town_and_district_staff_any_scope(towns: Seeded) -> None:
    # The seed, per town: a sensor flood (opened by the alert intake), a fire-lane report and a flood
    # report merged into the sensor case, both filed by actor "seed" (no account: residents' channel).
    with signed_in(towns, "town_operator") as client:
        page = client.get("/console/wall")
        assert page.status_code == 200 and "越河街道 · 指挥中心大屏" in page.text
        figures = _figures(client)
        assert figures["scope"] == "越河街道"
        assert figures["open"]["total"] == 2  # the flood (called up) and the fire lane; the merged one is not
        assert figures["intake"]["channels"] == {"sensor": 1, "hotline": 0, "console": 0, "residents": 2}
        # Three reports came in today; the merged one is no case of its own, and a merge closes no work.
        assert figures["trend"][-1]["opened"] == 2 and figures["trend"][-1]["closed"] == 0
        assert len(figures["trend"]) == 7 and sum(d["opened"] for d in figures["trend"][:-1]) == 0
        assert figures["devices"]["total"] == 30  # the pilot community's devices
        # The other town does not exist for them, nor does the district wall when asked for by name.
        assert client.get("/console/wall", params={"town": TOWN_B}).status_code == 404
        assert client.get("/console/wall/figures.json", params={"town": TOWN_B}).status_code == 404
        assert client.get("/console/wall/map.geojson", params={"town": TOWN_B}).status_code == 404
        assert client.get("/console/wall", params={"town": "Bad Town!"}).status_code == 422
    with signed_in(towns, "district_operator") as client:
        district = _figures(client)
        assert district["scope"] == "任城区"
        assert district["open"]["total"] == 4
        assert district["intake"]["channels"]["sensor"] == 2
        assert district["devices"]["total"] == 60
        other = _figures(client, town=TOWN_B)
        assert other["scope"] == "新河镇" and other["open"]["total"] == 2
        assert client.get("/console/wall", params={"town": "nowhere"}).status_code == 404
    for role in ("grid_worker", "department_handler"):
        with signed_in(towns, role) as client:
            refused = client.get("/console/wall")
            assert refused.status_code == 403
            assert "指挥大屏面向区级和街道" in refused.text
            assert client.get("/console/wall/figures.json").status_code == 403


def test_intake_channels_and_the_sla_split_follow_the_case_book(towns: Seeded) -> None:
    admin = towns.tokens["admin"]
    with TestClient(create_app(towns.settings)) as api:
        # The hotline files through Open311; an operator through the report route (an account: console).
        hotline = api.post(
            "/open311/v2/requests.json",
            data={
                "api_key": admin,
                "service_code": "door_left_open",
                "address_id": f"{A}/g-south",
                "description": "设备间门未关",
            },
        )
        assert hotline.status_code == 200, hotline.text
        console = api.post(
            "/api/v1/cases",
            headers=auth(admin),
            json={"community": A, "grid": "g-middle", "category": "gas_leak", "description": "燃气味"},
        )
        assert console.status_code == 201, console.text
    # One open case overdue by its completion deadline.
    db = make_engine(towns.settings.database_url)
    with db.begin() as conn:
        conn.execute(
            update(Case)
            .where(Case.id == console.json()["id"])
            .values(deadline=datetime.now(UTC) - timedelta(hours=1))
        )
    db.dispose()

    with signed_in(towns, "town_operator") as client:
        figures = _figures(client)
        en = _figures(client, lang="en")
    assert figures["intake"]["channels"] == {"sensor": 1, "hotline": 1, "console": 1, "residents": 2}
    assert figures["intake"]["total"] == 5
    # The SQL split equals the map's judgement of every open case, category by category.
    now = datetime.now(UTC)
    expected = Counter((c.category, sla_state(c, now)) for c in _open_cases(towns, (A,)))
    names = {"flooding": "积水内涝", "fire_lane_blocked": "消防通道占用", "door_left_open": "设备间门未关"}
    names["gas_leak"] = "燃气泄漏"
    by_name = {row["name"]: row for row in figures["open"]["categories"]}
    assert set(by_name) == set(names.values())
    for (category, sla), n in expected.items():
        assert by_name[names[category]]["counts"][sla] == n, (category, sla)
    assert figures["open"]["by_sla"]["overdue"] >= 1
    assert figures["open"]["categories"][0]["name"] == "燃气泄漏"  # the most overdue first
    assert figures["open"]["total"] == sum(expected.values()) == 4
    assert {row["name"] for row in en["open"]["categories"]} == {
        "Flooding",
        "Fire lane blocked",
        "Plant-room door left open",
        "Gas leak",
    }


def test_the_wall_map_holds_the_open_cases_of_the_scope_only(towns: Seeded) -> None:
    with signed_in(towns, "district_operator") as client:
        district = client.get("/console/wall/map.geojson").json()
        town_b = client.get("/console/wall/map.geojson", params={"town": TOWN_B}).json()
    with signed_in(towns, "town_operator") as client:
        town_a = client.get("/console/wall/map.geojson").json()
        english = client.get("/console/wall", params={"lang": "en"}).text

    def case_ids(collection: dict[str, Any]) -> set[int]:
        return {
            int(f["properties"]["id"]) for f in collection["features"] if f["properties"]["kind"] == "case"
        }

    open_a = {c.id for c in _open_cases(towns, (A,))}
    open_b = {c.id for c in _open_cases(towns, (B,))}
    assert case_ids(town_a) == open_a and case_ids(town_b) == open_b
    assert case_ids(district) == open_a | open_b
    kinds = {f["properties"]["kind"] for f in district["features"]}
    assert "building" not in kinds and "grid" in kinds  # a wall's map: outlines and what needs someone
    assert all(
        f["properties"]["status"] in ("alerting", "unknown")
        for f in district["features"]
        if f["properties"]["kind"] == "device"
    )
    assert "越河街道 · Command centre wall" in english and "Open cases by category and deadline" in english
