"""Two communities each with a ``wl-01``: identity is (community, device id) everywhere.

The pilot's config plus a copy of 竹竿巷 as 东关 (community ``dongguan``, in its own town) whose devices
and gateways keep their ids; only its grids are renamed (grids are units of the organisation). Readings,
alerts and cases of one must never show up as the other's — in the stores, over the API, in the console.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from api import accounts
from api.app import create_app
from api.settings import ApiSettings
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from series.factory import open_store
from series.store import Point, TimeSeriesStore
from tests.api.conftest import auth, console_login
from tests.platform import CONFIG_DIR
from yiwang.schema import create_all
from yiwang.servers import InfluxDatabase

A, B = "zhuganxiang", "dongguan"
TOWN_B = "dongguan-town"
GRID = {A: "g-north", B: "dg-north"}


def make_config(target: Path) -> Path:
    shutil.copytree(CONFIG_DIR, target)
    community: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "communities" / f"{A}.yaml").read_text())
    community |= {"id": B, "name": "东关社区", "town": "东关街道"}
    for grid in community["grids"]:
        grid["id"] = "d" + grid["id"]
        for building in grid.get("buildings", []):
            building["id"] = "d" + building["id"]
    for gateway in community["gateways"]:
        for device in gateway["devices"]:
            device["grid"] = "d" + device["grid"]
            if device.get("building"):
                device["building"] = "d" + device["building"]
    (target / "communities" / f"{B}.yaml").write_text(yaml.safe_dump(community, allow_unicode=True))
    org: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "organisation.yaml").read_text())
    org["towns"].append({"id": TOWN_B, "name": "东关街道", "communities": [B]})
    (target / "organisation.yaml").write_text(yaml.safe_dump(org, allow_unicode=True))
    return target


def readings(community: str, base: float, now_ms: int) -> list[Point]:
    tags = {"community": community, "gateway": "gw-01", "device": "wl-01", "grid": GRID[community]}
    return [Point("water.level", tags, {"level_cm": base + i}, now_ms - 60_000 * (5 - i)) for i in range(5)]


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[TestClient, ApiSettings, dict[str, str]]]:
    config = make_config(tmp_path / "config")
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path}/yiwang.db",
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=config,
        mqtt_port=1,
    )
    create_all(settings.database_url)
    db = make_engine(settings.database_url)
    tokens = {}
    for name, role, scope in (
        ("district", "district_operator", {}),
        ("op_a", "town_operator", {"town": "yuehe"}),
        ("op_b", "town_operator", {"town": TOWN_B}),
    ):
        user = accounts.create_user(db, name, "pw-" + name, role, **scope)
        tokens[name] = accounts.issue_token(db, user)
    policy = CasePolicy.load(config)
    engine = AlertEngine(load_rules(config, policy.categories), load_catalog(config))
    book = CaseBook(db, policy, timedelta(minutes=1))
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    # Only community A floods: an alert and a case of A's wl-01, none of B's.
    for offset, level in ((0, 80), (1, 85)):
        book.apply(
            engine.on_reading(A, "gw-01", Reading(device="wl-01", ts=ms + offset, values={"level_cm": level}))
        )
    db.dispose()
    store = open_store(settings.series_url)
    store.write(readings(A, 10.0, ms) + readings(B, 200.0, ms))
    store.close()
    with TestClient(create_app(settings)) as client:
        yield client, settings, tokens


def levels(body: dict[str, Any]) -> list[float]:
    return [p["values"]["level_cm"] for p in body["points"]]


def test_each_community_reads_only_its_own_wl_01(two: tuple[TestClient, ApiSettings, dict[str, str]]) -> None:
    client, _, tokens = two
    since = {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    for community, base in ((A, 10.0), (B, 200.0)):
        url = f"/api/v1/communities/{community}/devices/wl-01/telemetry"
        own = client.get(url, params=since, headers=auth(tokens["district"]))
        assert own.status_code == 200, own.text
        assert levels(own.json()) == [base + i for i in range(5)]
        legacy = client.get(
            "/api/v1/devices/wl-01/telemetry",
            params=since | {"community": community},
            headers=auth(tokens["district"]),
        )
        assert levels(legacy.json()) == [base + i for i in range(5)]
        agg = client.get(
            f"{url}/aggregate", params={"field": "level_cm", "fn": "max"}, headers=auth(tokens["district"])
        )
        assert agg.status_code == 200 and agg.json()["community"] == community
        assert max(b["value"] for b in agg.json()["buckets"]) == base + 4
    # A town operator sees one wl-01: the old address is unambiguous for them, and it is their own.
    for user, base in (("op_a", 10.0), ("op_b", 200.0)):
        mine = client.get("/api/v1/devices/wl-01/telemetry", params=since, headers=auth(tokens[user]))
        assert mine.status_code == 200 and levels(mine.json()) == [base + i for i in range(5)]
    other = client.get(f"/api/v1/communities/{B}/devices/wl-01/telemetry", headers=auth(tokens["op_a"]))
    assert other.status_code == 404


def test_an_id_in_two_visible_communities_needs_the_community(
    two: tuple[TestClient, ApiSettings, dict[str, str]],
) -> None:
    client, _, tokens = two
    for path in (
        "/api/v1/devices/wl-01/telemetry",
        "/api/v1/devices/wl-01/telemetry/aggregate?field=level_cm",
    ):
        answer = client.get(path, headers=auth(tokens["district"]))
        assert answer.status_code == 422, answer.text
        assert f"communities {B}, {A}" in answer.text and "name the community" in answer.text


def test_alerts_and_cases_of_one_community_are_not_the_others(
    two: tuple[TestClient, ApiSettings, dict[str, str]],
) -> None:
    client, settings, tokens = two
    cases_a = client.get("/api/v1/cases", headers=auth(tokens["op_a"])).json()["items"]
    assert cases_a and all(c["community"] == A for c in cases_a)
    assert client.get("/api/v1/cases", headers=auth(tokens["op_b"])).json()["items"] == []
    alerts_b = client.get("/api/v1/alerts", headers=auth(tokens["op_b"]))
    assert alerts_b.status_code == 200 and alerts_b.json()["items"] == []
    # B's device page shows neither A's alert nor A's case; A's shows both.
    db = make_engine(settings.database_url)
    accounts.create_user(db, "op", "correct horse", "town_operator", town=TOWN_B)
    db.dispose()
    console_login(client)
    page_b = client.get(f"/console/devices/{B}/wl-01").text
    assert 'data-status="firing"' not in page_b and not re.search(r"/console/cases/\d", page_b)
    assert client.get(f"/console/devices/{A}/wl-01").status_code == 404


@pytest.mark.integration
def test_influxdb_keeps_the_two_wl_01_apart(influx_database: InfluxDatabase) -> None:
    store: TimeSeriesStore = open_store(influx_database.store_url)
    try:
        ms = int(datetime.now(UTC).timestamp() * 1000)
        store.write(readings(A, 10.0, ms) + readings(B, 200.0, ms))
        for community, base in ((A, 10.0), (B, 200.0)):
            rows = store.query(
                measurement="water.level", community=community, device="wl-01", since_ms=ms - 3_600_000
            )
            assert [r.fields["level_cm"] for r in rows] == [base + i for i in range(5)]
            buckets = store.aggregate(
                measurement="water.level",
                community=community,
                device="wl-01",
                field="level_cm",
                fn="max",
                window_ms=3_600_000,
                since_ms=ms - 3_600_000,
                until_ms=ms + 1,
            )
            assert max(b.value for b in buckets) == base + 4
        latest = store.latest(measurement="water.level")
        assert latest[(A, "wl-01")].fields == {"level_cm": 14.0}
        assert latest[(B, "wl-01")].fields == {"level_cm": 204.0}
    finally:
        store.close()
