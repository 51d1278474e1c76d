"""The real ingest process on a registry seeded from the demo community files (SQLite, live catalog)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.db import make_engine
from contract.catalog import load_sensor_types
from registry.importer import import_communities, read_communities
from registry.live import open_live_catalog
from registry.rows import Town
from tests.platform import Service
from yiwang.servers import MosquittoServer, unique_name

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
TYPES = {p.id for p in load_sensor_types(CONFIG)}


@contextmanager
def ingest_on_seeded_registry(
    tmp_path: Path, mosquitto: MosquittoServer, **env: str
) -> Iterator[tuple[Service, str]]:
    """``yiwang ingest`` with the registry already seeded; yields the process and its database URL.
    ``env`` adds or overrides settings (``YIWANG_REGISTRY_POLL_S``, ``YIWANG_INGEST_METRICS_PORT``)."""
    db_url = f"sqlite:///{tmp_path}/yiwang.db"
    db = make_engine(db_url)
    towns = [Town("yuehe", "越河街道", "任城区", ("zhuganxiang",))]
    open_live_catalog(db, CONFIG)  # creates the registry's tables
    import_communities(db, read_communities(CONFIG / "communities"), towns, TYPES)
    db.dispose()
    settings = {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_SERIES_URL": f"sqlite:///{tmp_path}/series.db",
        "YIWANG_DATABASE_URL": db_url,
        "YIWANG_CONFIG_DIR": str(CONFIG),
        "YIWANG_INGEST_CLIENT_ID": unique_name("ingest"),
        "YIWANG_INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "YIWANG_INGEST_METRICS_PORT": "0",
    }
    service = Service(["ingest"], settings | env, ROOT, tmp_path / "ingest.log").start()
    try:
        yield service, db_url
    finally:
        service.stop()
