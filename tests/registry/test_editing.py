"""One change at a time: every refusal names the field, and nothing is half-written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.catalog import load_sensor_types
from registry import editing, version
from registry.editing import RegistryError
from registry.importer import import_communities, read_communities
from registry.rows import from_database
from tests.registry.conftest import CONFIG, YUEHE

TYPES = {p.id for p in load_sensor_types(CONFIG)}
SQUARE = [[[116.58, 35.41], [116.59, 35.41], [116.59, 35.42], [116.58, 35.41]]]


@pytest.fixture
def seeded(registry_db: Engine) -> Engine:
    import_communities(registry_db, read_communities(CONFIG / "communities"), [YUEHE], TYPES)
    return registry_db


def _in(db: Engine, change: Callable[[Session], Any]) -> Any:
    with Session(db) as session, session.begin():
        return change(session)


def test_a_device_is_added_moved_put_in_maintenance_and_retired(seeded: Engine) -> None:
    new = {
        "id": "wl-09",
        "type": "water.level@1",
        "grid": "g-south",
        "building": "b-05",
        "lat": 35.4,
        "lon": 116.5,
    }
    _in(seeded, lambda s: editing.add_device(s, "zhuganxiang", "gw-02", new, TYPES))
    _in(seeded, lambda s: editing.change_device(s, "zhuganxiang", "wl-09", {"grid": "g-middle"}, TYPES))
    _in(seeded, lambda s: editing.change_device(s, "zhuganxiang", "wl-09", {"state": "maintenance"}, TYPES))
    with Session(seeded) as session:
        row = from_database(session)["device"][("zhuganxiang", "wl-09")]
    assert (row["grid_id"], row["building_id"], row["state"]) == ("g-middle", None, "maintenance")
    _in(seeded, lambda s: editing.change_device(s, "zhuganxiang", "wl-09", {"state": "retired"}, TYPES))
    assert version.current(seeded) == 5
    with pytest.raises(RegistryError, match="state: a retired device stays retired"):
        _in(seeded, lambda s: editing.change_device(s, "zhuganxiang", "wl-09", {"state": "active"}, TYPES))


@pytest.mark.parametrize(
    ("fields", "gateway", "field", "message"),
    [
        ({"id": "x-1", "type": "air.co9@1", "grid": "g-north"}, "gw-01", "type", "unknown sensor type"),
        ({"id": "th-0101", "type": "env.th@1", "grid": "g-north"}, "gw-01", "id", "already has a device"),
        ({"id": "x-1", "type": "env.th@1", "grid": "g-north"}, "gw-77", "gateway", "not a gateway of"),
        ({"id": "x-1", "type": "env.th@1", "grid": "g-east"}, "gw-01", "grid", "not a grid of"),
        (
            {"id": "x-1", "type": "env.th@1", "grid": "g-north", "lat": 91, "lon": 1},
            "gw-01",
            "lat",
            "outside",
        ),
        ({"id": "x 1", "type": "env.th@1", "grid": "g-north"}, "gw-01", "id", ""),
    ],
)
def test_a_bad_device_is_refused_naming_the_field(
    seeded: Engine, fields: dict, gateway: str, field: str, message: str
) -> None:
    with pytest.raises(RegistryError) as caught:
        _in(seeded, lambda s: editing.add_device(s, "zhuganxiang", gateway, fields, TYPES))
    assert caught.value.field == field and message in caught.value.message
    assert version.current(seeded) == 1


def test_places_are_added_under_their_parents(seeded: Engine) -> None:
    _in(seeded, lambda s: editing.add_town(s, {"id": "nanzhang", "name": "南张街道", "district": "任城区"}))
    _in(seeded, lambda s: editing.add_community(s, {"id": "liuxing", "name": "柳行社区", "town": "nanzhang"}))
    _in(
        seeded,
        lambda s: editing.add_grid(s, "liuxing", {"id": "g-north", "name": "北网格", "polygon": SQUARE}),
    )
    _in(seeded, lambda s: editing.add_building(s, "liuxing", "g-north", {"id": "b-01", "name": "1号楼"}))
    _in(seeded, lambda s: editing.add_gateway(s, "liuxing", {"id": "gw-lx-01", "name": "柳行网关"}))
    with Session(seeded) as session:
        rows = from_database(session)
    assert rows["grid"][("liuxing", "g-north")]["polygon"] == SQUARE  # the same grid id as zhuganxiang's
    with pytest.raises(
        RegistryError, match="id: gateway 'gw-01' is already registered in community zhuganxiang"
    ):
        _in(seeded, lambda s: editing.add_gateway(s, "liuxing", {"id": "gw-01"}))
    with pytest.raises(RegistryError, match="town: 'nowhere' is not a town"):
        _in(seeded, lambda s: editing.add_community(s, {"id": "x", "name": "x", "town": "nowhere"}))
    open_ring = [[*SQUARE[0][:-1], [116.0, 35.0]]]
    with pytest.raises(RegistryError, match="polygon: outer ring does not close"):
        _in(seeded, lambda s: editing.set_polygon(s, "liuxing", "g-north", open_ring))
