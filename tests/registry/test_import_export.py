"""`yiwang registry import/export`: the community files seed the registry, idempotently, and come back."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.catalog import Community, load_sensor_types
from contract.errors import ContractError
from registry import version
from registry.export import export
from registry.importer import import_communities, read_communities
from registry.rows import from_database
from registry.snapshot import load_communities
from tests.registry.conftest import CONFIG, YUEHE

TYPES = {p.id for p in load_sensor_types(CONFIG)}


def _demo() -> list[Community]:
    return read_communities(CONFIG / "communities")


def test_importing_the_demo_twice_changes_nothing_the_second_time(registry_db: Engine) -> None:
    first = import_communities(registry_db, _demo(), [YUEHE], TYPES)
    assert first.version == 1
    kinds = [c.describe()[0] for c in first.changes]
    assert set(kinds) == {"+"} and len([c for c in first.changes if c.table == "device"]) == 30
    again = import_communities(registry_db, _demo(), [YUEHE], TYPES)
    assert again.changes == [] and again.version is None
    assert version.current(registry_db) == 1


def test_a_dry_run_shows_the_changes_and_applies_none(registry_db: Engine) -> None:
    result = import_communities(registry_db, _demo(), [YUEHE], TYPES, dry_run=True)
    assert result.changes and result.version is None
    with Session(registry_db) as session:
        assert from_database(session)["device"] == {}
    assert version.current(registry_db) == 0


def test_an_edited_file_is_shown_as_changes_and_a_dropped_device_is_retired(registry_db: Engine) -> None:
    import_communities(registry_db, _demo(), [YUEHE], TYPES)
    body = yaml.safe_load((CONFIG / "communities" / "zhuganxiang.yaml").read_text())
    first_gateway = body["gateways"][0]
    first_gateway["devices"][0]["location"] = "新配电室"
    dropped = first_gateway["devices"].pop(1)["id"]
    body["grids"][0]["buildings"].append({"id": "b-99", "name": "新楼"})
    result = import_communities(registry_db, [Community.model_validate(body)], [YUEHE], TYPES)
    lines = sorted(c.describe() for c in result.changes)
    assert lines == sorted(
        [
            "+ building zhuganxiang/b-99 (grid_id g-north, name 新楼)",
            f"~ device zhuganxiang/{dropped}: state active → retired",
            "~ device zhuganxiang/th-0101: location 配电室 → 新配电室",
        ]
    )
    with Session(registry_db) as session:
        (community,) = load_communities(session)
    retired = [d for g in community.gateways for d in g.devices if d.id == dropped]
    assert [d.state.value for d in retired] == ["retired"]  # kept, never deleted


def test_export_writes_files_that_import_back_unchanged(registry_db: Engine, tmp_path: Path) -> None:
    body = yaml.safe_load((CONFIG / "communities" / "zhuganxiang.yaml").read_text())
    device = body["gateways"][0]["devices"][0]
    device.update({"lat": 35.4151, "lon": 116.5872, "installed": "2026-03-01", "state": "maintenance"})
    body["grids"][0]["polygon"] = [[[116.58, 35.41], [116.59, 35.41], [116.59, 35.42], [116.58, 35.41]]]
    import_communities(registry_db, [Community.model_validate(body)], [YUEHE], TYPES)
    with Session(registry_db) as session:
        before = from_database(session)
        (path,) = export(before, tmp_path)
    exported = yaml.safe_load(path.read_text())
    devices = {d["id"]: d for g in exported["gateways"] for d in g["devices"]}
    assert devices["th-0101"]["state"] == "maintenance"
    assert devices["th-0101"]["installed"] == "2026-03-01"
    assert "state" not in devices["th-0102"]  # defaults are left out, as a person writes the file
    assert exported["town"] == "越河街道" and exported["district"] == "任城区"
    again = import_communities(registry_db, read_communities(tmp_path), [YUEHE], TYPES)
    assert again.changes == []


def test_gcj02_coordinates_are_stored_as_wgs84(registry_db: Engine) -> None:
    body = yaml.safe_load((CONFIG / "communities" / "zhuganxiang.yaml").read_text())
    # eviltransform's Shanghai test point, read off a Chinese map (GCJ-02).
    body["gateways"][0]["devices"][0].update(
        {"lat": 31.17530398364597, "lon": 121.531541859215, "datum": "gcj02"}
    )
    import_communities(registry_db, [Community.model_validate(body)], [YUEHE], TYPES)
    with Session(registry_db) as session:
        row = from_database(session)["device"][("zhuganxiang", "th-0101")]
    assert row["lat"] == pytest.approx(31.1774276, abs=1e-6)
    assert row["lon"] == pytest.approx(121.5272106, abs=1e-6)


def test_two_communities_may_hold_the_same_device_id(registry_db: Engine) -> None:
    demo = _demo()[0]
    twin = demo.model_copy(update={"id": "twin", "name": "双胞胎社区"})
    towns = [YUEHE.__class__("yuehe", "越河街道", "任城区", ("zhuganxiang", "twin"))]
    import_communities(registry_db, [demo, twin], towns, TYPES)
    with Session(registry_db) as session:
        devices = from_database(session)["device"]
    assert ("zhuganxiang", "th-0101") in devices and ("twin", "th-0101") in devices


def test_nothing_is_written_when_a_device_names_an_unknown_type(registry_db: Engine) -> None:
    body = yaml.safe_load((CONFIG / "communities" / "zhuganxiang.yaml").read_text())
    body["gateways"][1]["devices"][2]["type"] = "air.co9@1"
    with pytest.raises(ContractError, match=r"device \S+: unknown sensor type 'air.co9@1'"):
        import_communities(registry_db, [Community.model_validate(body)], [YUEHE], TYPES)
    assert version.current(registry_db) == 0


def test_a_community_no_town_lists_is_refused(registry_db: Engine) -> None:
    orphan = YUEHE.__class__("yuehe", "越河街道", "任城区", ())
    with pytest.raises(ContractError, match="community zhuganxiang: no town of the organisation lists it"):
        import_communities(registry_db, _demo(), [orphan], TYPES)


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([[[116.58, 35.41], [116.59, 35.41], [116.59, 35.42], [116.58, 35.42]]], "outer ring does not close"),
        (
            [[[116.58, 35.41], [116.59, 35.41], [116.58, 35.41]]],
            "outer ring has 3 positions; a closed ring needs at least 4",
        ),
        ([[[116.58, 95.0], [116.59, 35.41], [116.59, 35.42], [116.58, 95.0]]], "latitude 95.0 is outside"),
    ],
)
def test_a_bad_polygon_is_refused_naming_the_grid(tmp_path: Path, polygon: list, message: str) -> None:
    body = yaml.safe_load((CONFIG / "communities" / "zhuganxiang.yaml").read_text())
    body["grids"][1]["polygon"] = polygon
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(body, allow_unicode=True))
    with pytest.raises(ContractError, match=rf"bad.yaml: grids.1.polygon: {message}"):
        read_communities(tmp_path)


def test_a_device_with_half_a_coordinate_is_refused(tmp_path: Path) -> None:
    body = yaml.safe_load((CONFIG / "communities" / "zhuganxiang.yaml").read_text())
    body["gateways"][0]["devices"][0]["lat"] = 35.4
    body["gateways"][0]["devices"][0].pop("lon", None)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(body, allow_unicode=True))
    with pytest.raises(ContractError, match="lat and lon come together"):
        read_communities(tmp_path)
