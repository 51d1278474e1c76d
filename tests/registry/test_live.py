"""The live catalog: files until the registry is seeded, then the registry, reloaded on every change."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.catalog import load_catalog, load_sensor_types
from registry import version
from registry.csv_devices import import_devices_csv
from registry.importer import import_communities, read_communities
from registry.live import LiveCatalog
from registry.models import RegistryDevice
from tests.registry.conftest import CONFIG, YUEHE

TYPES = {p.id for p in load_sensor_types(CONFIG)}


def _live(db: Engine, poll_s: float = 1.0) -> LiveCatalog:
    return LiveCatalog(db, lambda: load_sensor_types(CONFIG), lambda: load_catalog(CONFIG), poll_s=poll_s)


def _seed(db: Engine) -> None:
    import_communities(db, read_communities(CONFIG / "communities"), [YUEHE], TYPES)


def test_the_files_are_the_catalog_until_the_registry_is_seeded(registry_db: Engine) -> None:
    live = _live(registry_db)
    assert live.status()["source"] == "files" and live.version == 0
    assert live.catalog.device("zhuganxiang", "gw-01", "th-0101") is not None
    _seed(registry_db)
    assert live.refresh() is True
    assert live.status() | {"loaded_at": None} == {
        "version": 1,
        "source": "registry",
        "loaded_at": None,
        "error": None,
    }
    assert live.catalog.device("zhuganxiang", "gw-01", "th-0101") is not None
    assert live.refresh() is False  # same version: no reload


def test_a_device_added_while_running_is_seen_by_the_polling_thread(registry_db: Engine) -> None:
    _seed(registry_db)
    live = _live(registry_db, poll_s=0.2)
    seen: list[int] = []
    live.on_change(lambda catalog: seen.append(sum(1 for _ in catalog.devices())))
    live.start()
    try:
        csv = b"community,id,type,gateway,grid\nzhuganxiang,th-0950,env.th@1,gw-02,g-south\n"
        import_devices_csv(registry_db, csv, TYPES)
        deadline = time.monotonic() + 5
        while live.catalog.device("zhuganxiang", "gw-02", "th-0950") is None:
            assert time.monotonic() < deadline, "the new device did not reach the catalog within 5 s"
            time.sleep(0.05)
    finally:
        live.stop()
    assert seen == [31]


def test_a_registry_that_does_not_make_a_catalog_keeps_the_last_good_one(registry_db: Engine) -> None:
    _seed(registry_db)
    live = _live(registry_db)
    with Session(registry_db) as session, session.begin():
        # Written past the registry's own checks (as a hand-edited row would be): an unknown type.
        now = datetime.now(UTC)
        session.add(
            RegistryDevice(
                community_id="zhuganxiang",
                id="xx-01",
                type="air.co9@1",
                gateway_id="gw-01",
                grid_id="g-north",
                location="",
                state="active",
                updated_at=now,
            )
        )
        version.bump(session, now)
    assert live.refresh() is False
    status = live.status()
    assert status["version"] == 1 and "unknown sensor type 'air.co9@1'" in status["error"]
    assert live.catalog.device("zhuganxiang", "gw-01", "th-0101") is not None
