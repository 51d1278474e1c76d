"""Every way of writing the registry moves the revision of the communities it touched, in the same
transaction as the change, and of no other (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from contract.catalog import load_sensor_types
from registry import editing, version
from registry.csv_devices import import_devices_csv
from registry.importer import import_communities
from registry.models import RegistryCommunity
from registry.rows import Town
from tests.registry.conftest import CONFIG
from tests.registry.test_incremental_reload import TOWN, two_communities

TYPES = {p.id for p in load_sensor_types(CONFIG)}
SQUARE = [[[116.58, 35.41], [116.59, 35.41], [116.59, 35.42], [116.58, 35.42], [116.58, 35.41]]]


@pytest.fixture
def seeded(registry_db: Engine) -> Engine:
    import_communities(registry_db, two_communities(), [TOWN], TYPES)
    return registry_db


def revisions(db: Engine) -> dict[str, int]:
    with Session(db) as session:
        rows = session.execute(select(RegistryCommunity.id, RegistryCommunity.revision)).all()
        return dict(rows)


def _device(s: Session) -> Any:
    fields = {"id": "wl-09", "type": "water.level@1", "grid": "g-south"}
    return editing.add_device(s, "beta", "bgw-02", fields, TYPES)


WRITES: dict[str, Callable[[Session], Any]] = {
    "add_device": _device,
    "change_device": lambda s: editing.change_device(s, "beta", "th-0101", {"location": "东门"}, TYPES),
    "retire_device": lambda s: editing.change_device(s, "beta", "th-0101", {"state": "retired"}, TYPES),
    "add_grid": lambda s: editing.add_grid(s, "beta", {"id": "g-east", "name": "东区网格"}),
    "add_building": lambda s: editing.add_building(s, "beta", "g-north", {"id": "b-99", "name": "新楼"}),
    "set_polygon": lambda s: editing.set_polygon(s, "beta", "g-north", SQUARE),
    "add_gateway": lambda s: editing.add_gateway(s, "beta", {"id": "bgw-09", "name": "新网关"}),
    "add_bus": lambda s: editing.add_bus(
        s, "beta", "bgw-01", {"id": "rs485-9", "kind": "modbus_rtu", "port": "/dev/ttyS9"}
    ),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_an_edit_moves_its_community_revision_only(seeded: Engine, write: str) -> None:
    before = revisions(seeded)
    with Session(seeded) as session, session.begin():
        WRITES[write](session)
    after = revisions(seeded)
    assert after["beta"] == version.current(seeded) > before["beta"]
    assert after["zhuganxiang"] == before["zhuganxiang"]


def test_a_refused_edit_moves_nothing(seeded: Engine) -> None:
    before, at = revisions(seeded), version.current(seeded)
    with pytest.raises(editing.RegistryError), Session(seeded) as session, session.begin():
        editing.change_device(session, "beta", "th-0101", {"grid": "g-nowhere"}, TYPES)
    assert revisions(seeded) == before and version.current(seeded) == at


def test_a_new_community_gets_the_version_that_made_it(seeded: Engine) -> None:
    with Session(seeded) as session, session.begin():
        editing.add_town(session, {"id": "jinan", "name": "济安桥街道"})
    assert "gamma" not in revisions(seeded)
    with Session(seeded) as session, session.begin():
        editing.add_community(session, {"id": "gamma", "name": "第三社区", "town": "jinan"})
    after = revisions(seeded)
    assert after["gamma"] == version.current(seeded) and after["beta"] < after["gamma"]


def test_an_import_moves_the_communities_it_changed(seeded: Engine) -> None:
    before = revisions(seeded)
    demo, beta = two_communities()
    moved = beta.model_copy(update={"name": "第二社区（改）"})
    assert import_communities(seeded, [demo, moved], [TOWN], TYPES).version == version.current(seeded)
    after = revisions(seeded)
    assert after["beta"] == version.current(seeded) and after["zhuganxiang"] == before["zhuganxiang"]
    # Nothing to do: nothing moves.
    assert import_communities(seeded, [demo, moved], [TOWN], TYPES).version is None
    assert revisions(seeded) == after


def test_a_town_renamed_by_an_import_moves_every_community_of_it(seeded: Engine) -> None:
    renamed = Town(TOWN.id, "越河街道（新）", TOWN.district, TOWN.communities)
    import_communities(seeded, two_communities()[:1], [renamed], TYPES)
    after = revisions(seeded)
    # Only zhuganxiang's file was imported, but beta's catalog names the town too.
    assert after == {"zhuganxiang": version.current(seeded), "beta": version.current(seeded)}


def test_a_csv_import_moves_the_communities_of_its_rows(seeded: Engine) -> None:
    before = revisions(seeded)
    csv = b"community,id,type,gateway,grid\nzhuganxiang,th-0950,env.th@1,gw-02,g-south\n"
    result = import_devices_csv(seeded, csv, TYPES)
    after = revisions(seeded)
    assert after["zhuganxiang"] == result.version == version.current(seeded)
    assert after["beta"] == before["beta"]
    assert import_devices_csv(seeded, csv, TYPES, dry_run=True).version is None
    assert revisions(seeded) == after
