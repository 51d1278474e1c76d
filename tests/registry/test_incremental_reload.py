"""A registry change costs what it changed: a reload reads only the communities whose revision moved,
and the new catalog shares every other community with the old one (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event
from sqlalchemy.orm import Session

from contract.catalog import Community, DeviceState, load_catalog, load_sensor_types
from registry import editing, version
from registry.importer import import_communities, read_communities
from registry.live import LiveCatalog, open_live_catalog
from registry.models import RegistryDevice
from registry.rows import Town
from tests.registry.conftest import CONFIG

TYPES = {p.id for p in load_sensor_types(CONFIG)}
FOUR = ("th-0101", "th-0102", "th-0201", "th-0202")
TOWN = Town("yuehe", "越河街道", "任城区", ("zhuganxiang", "beta"))


def two_communities() -> list[Community]:
    """The demo community and a copy named ``beta``: the same device ids, their own gateways."""
    [demo] = read_communities(CONFIG / "communities")
    gateways = [g.model_copy(update={"id": f"b{g.id}"}) for g in demo.gateways]
    beta = demo.model_copy(update={"id": "beta", "name": "第二社区", "gateways": gateways})
    return [demo, beta]


@pytest.fixture
def seeded(registry_db: Engine) -> Engine:
    import_communities(registry_db, two_communities(), [TOWN], TYPES)
    return registry_db


def live_on(db: Engine, poll_s: float = 1.0) -> LiveCatalog:
    return LiveCatalog(db, lambda: load_sensor_types(CONFIG), lambda: load_catalog(CONFIG), poll_s=poll_s)


def edit(db: Engine, change: Callable[[Session], Any]) -> Any:
    with Session(db) as session, session.begin():
        return change(session)


def relocate(db: Engine, community: str, device: str, location: str) -> None:
    edit(db, lambda s: editing.change_device(s, community, device, {"location": location}, TYPES))


@contextmanager
def device_reads(db: Engine) -> Iterator[list[str]]:
    """The parameters of every query of ``registry_devices`` while inside."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM registry_devices" in statement:
            seen.append(repr(parameters))

    event.listen(db, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", record)


def test_an_edit_in_one_community_reads_and_replaces_only_it(seeded: Engine) -> None:
    live = live_on(seeded)
    before = live.catalog
    relocate(seeded, "zhuganxiang", "th-0101", "3号楼东门")
    with device_reads(seeded) as reads:
        assert live.refresh() is True
    assert live.last_read == frozenset({"zhuganxiang"})
    assert len(reads) == 1 and "zhuganxiang" in reads[0] and "beta" not in reads[0]
    after = live.catalog
    assert after.device_in("zhuganxiang", "th-0101").device.location == "3号楼东门"  # type: ignore[union-attr]
    # beta was not read: its community and device records are the very objects of the old catalog.
    assert after.communities["beta"] is before.communities["beta"]
    assert after.device_in("beta", "th-0101") is before.device_in("beta", "th-0101")
    assert after.changed_since(before) == {"zhuganxiang"}
    assert live.version == version.current(seeded)


def test_the_first_load_and_a_hand_made_change_read_everything(seeded: Engine) -> None:
    live = live_on(seeded)
    assert live.last_read is None  # the first load
    with Session(seeded) as session, session.begin():
        version.bump(session)  # names no community: every community counts as changed
    assert live.refresh() is True
    assert live.last_read == frozenset({"zhuganxiang", "beta"})


def test_a_town_added_with_no_community_reloads_nothing(seeded: Engine) -> None:
    live = live_on(seeded)
    before = live.catalog
    edit(seeded, lambda s: editing.add_town(s, {"id": "jinan", "name": "济安桥街道"}))
    assert live.refresh() is False
    assert live.catalog is before and live.version == version.current(seeded)


def test_an_edit_committed_during_a_reload_is_not_lost(seeded: Engine) -> None:
    """Two edits land between the reload reading the revisions and reading the rows: one in the
    community being reloaded, one in the other. The next reload has both, whatever the first saw."""
    live = live_on(seeded)
    relocate(seeded, "zhuganxiang", "th-0101", "first")
    done = threading.Event()

    def edit_meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM registry_devices" in statement and not done.is_set():
            done.set()
            relocate(seeded, "zhuganxiang", "th-0102", "during")
            relocate(seeded, "beta", "th-0101", "during")

    event.listen(seeded, "before_cursor_execute", edit_meanwhile)
    try:
        assert live.refresh() is True
    finally:
        event.remove(seeded, "before_cursor_execute", edit_meanwhile)
    assert done.is_set()
    assert live.catalog.device_in("zhuganxiang", "th-0101").device.location == "first"  # type: ignore[union-attr]
    live.refresh()
    catalog = live.catalog
    assert catalog.device_in("zhuganxiang", "th-0102").device.location == "during"  # type: ignore[union-attr]
    assert catalog.device_in("beta", "th-0101").device.location == "during"  # type: ignore[union-attr]
    assert live.refresh() is False and live.version == version.current(seeded)


def test_edits_while_the_polling_thread_runs_all_arrive(seeded: Engine) -> None:
    live = live_on(seeded, poll_s=0.05)
    live.start()
    try:
        for n in range(20):
            relocate(seeded, "zhuganxiang" if n % 2 else "beta", FOUR[n % 4], f"edit {n}")
        deadline = datetime.now(UTC).timestamp() + 10
        while live.version != version.current(seeded):
            assert datetime.now(UTC).timestamp() < deadline, live.status()
            threading.Event().wait(0.05)
    finally:
        live.stop()
    for n in range(16, 20):
        community = "zhuganxiang" if n % 2 else "beta"
        info = live.catalog.device_in(community, FOUR[n % 4])
        assert info is not None and info.device.location == f"edit {n}"


def test_a_retired_or_deleted_device_disappears(seeded: Engine) -> None:
    live = live_on(seeded)
    edit(seeded, lambda s: editing.change_device(s, "beta", "th-0101", {"state": "retired"}, TYPES))
    assert live.refresh() is True and live.last_read == frozenset({"beta"})
    retired = live.catalog.device_in("beta", "th-0101")
    assert retired is not None and retired.device.state == DeviceState.RETIRED  # kept: ingest names it
    assert live.catalog.device_in("zhuganxiang", "th-0101").device.state == DeviceState.ACTIVE  # type: ignore[union-attr]
    # A file without a device retires it (an import never deletes one).
    demo, _beta = two_communities()
    gateways = [
        g.model_copy(update={"devices": [d for d in g.devices if d.id != "wl-01"]}) for g in demo.gateways
    ]
    import_communities(seeded, [demo.model_copy(update={"gateways": gateways})], [TOWN], TYPES)
    assert live.refresh() is True and live.last_read == frozenset({"zhuganxiang"})
    assert live.catalog.device_in("zhuganxiang", "wl-01").device.state == DeviceState.RETIRED  # type: ignore[union-attr]
    # A row deleted by hand (with the community named) is gone from the catalog altogether.
    with Session(seeded) as session, session.begin():
        session.execute(
            delete(RegistryDevice).where(
                RegistryDevice.community_id == "beta", RegistryDevice.id == "th-0101"
            )
        )
        version.bump(session, communities=["beta"])
    assert live.refresh() is True
    assert live.catalog.device_in("beta", "th-0101") is None
    assert live.catalog.device("beta", "bgw-01", "th-0101") is None
    assert all(not (d.community.id == "beta" and d.device.id == "th-0101") for d in live.catalog.devices())
    assert live.catalog.device_in("zhuganxiang", "th-0101") is not None


def test_two_communities_with_the_same_device_id_stay_apart(seeded: Engine) -> None:
    live = live_on(seeded)
    relocate(seeded, "beta", "th-0101", "beta's stairwell")
    edit(
        seeded, lambda s: editing.change_device(s, "zhuganxiang", "th-0101", {"state": "maintenance"}, TYPES)
    )
    assert live.refresh() is True and live.last_read == frozenset({"beta", "zhuganxiang"})
    mine, theirs = live.catalog.device_in("zhuganxiang", "th-0101"), live.catalog.device_in("beta", "th-0101")
    assert mine is not None and theirs is not None
    assert (mine.device.location, mine.device.state) != (theirs.device.location, theirs.device.state)
    assert theirs.device.location == "beta's stairwell" and theirs.device.state == DeviceState.ACTIVE
    assert mine.device.state == DeviceState.MAINTENANCE and mine.community.id == "zhuganxiang"
    assert live.catalog.device("beta", "gw-01", "th-0101") is None  # beta's device is on bgw-01


def test_a_changed_sensor_type_file_reloads_every_community(seeded: Engine, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    live = open_live_catalog(seeded, config)
    relocate(seeded, "beta", "th-0101", "东门")
    assert live.refresh() is True and live.last_read == frozenset({"beta"})  # the types' files did not change
    profile = config / "sensor-types" / "env.th.yaml"
    profile.write_text(profile.read_text(encoding="utf-8").replace("description:", "description: 新 —", 1))
    relocate(seeded, "beta", "th-0101", "西门")
    assert live.refresh() is True and live.last_read is None
    assert live.catalog.profiles["env.th@1"].description.startswith("新 —")
