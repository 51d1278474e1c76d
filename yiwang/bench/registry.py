"""`yiwang bench registry`: the registry of a whole district — 100 communities × 1,000 devices.

The rows are bulk-inserted into PostgreSQL (the production store; SQLite only when asked for). Then:

- ``reload_ms``: a device is added through ``registry.editing`` (one transaction, as the API does)
  while two processes follow the registry as ingest and alerts do (``yiwang.bench.registry_consumers``:
  a :class:`registry.live.LiveCatalog` polling every second; ingest swaps its decoder on the change,
  alerts applies it at its next timer tick); the figure is commit → the device applied in both, the
  worst of the trials. The poll period is part of it, as it is for the services.
- ``catalog_load_ms`` is one full load (read 100,000 rows, build the catalog); its ceiling,
  ``ceiling_rows_ms``, is reading the same rows with no objects made. ``catalog_replace_ms`` is what a
  change costs since #21 item 8: read one community's rows and replace it in the catalog (the median
  of five communities, after one that warms the statements up).
- ``catalog_mb``: the memory one loaded catalog holds (tracemalloc, after a collection), which each of
  ingest and alerts pays once; ``engine_index_ms``: the alert engine indexing every device (start-up,
  or a change of sensor types); ``engine_reindex_ms``: re-indexing after one community changed.
- The API as its own process on that database: a device's registry record, a community's map, and the
  console's device page, p50/p99 over repeated requests.

Prints one JSON object.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.rules import load_rules
from api.accounts import ensure_demo_operator
from cases.policy import CasePolicy
from common.db import Base, create_tables, make_engine
from contract.catalog import Catalog, load_sensor_types
from registry import editing, version
from registry.models import (
    TABLES,
    RegistryBuilding,
    RegistryCommunity,
    RegistryDevice,
    RegistryGateway,
    RegistryGrid,
    RegistryTown,
)
from registry.snapshot import load_communities
from yiwang.bench.api import api_process, console_ms, percentiles, relational_store
from yiwang.bench.registry_consumers import Role, follow
from yiwang.schema import create_all

COMMUNITIES = 100
DEVICES_PER_COMMUNITY = 1_000
GRIDS, BUILDINGS_PER_GRID, GATEWAYS = 10, 5, 5
REPLACE_TRIALS = 5  # communities replaced one at a time for catalog_replace_ms (the median)
TYPES = ("env.th@1", "water.level@1", "fire.smoke@1", "gas.combustible@1", "access.door@1")


def _square(lon: float, lat: float, size: float) -> list[list[list[float]]]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return [ring]


def populate(db: Engine, communities: int, devices_per_community: int) -> int:
    """A district of ``communities`` × ``devices_per_community`` devices; returns the devices stored."""
    now = datetime.now(UTC)
    towns = [
        {"id": f"town-{t:02d}", "name": f"第{t}街道", "district": "任城区"}
        for t in range(communities // 10 + 1)
    ]
    rows: dict[Any, list[dict[str, Any]]] = {
        RegistryCommunity: [],
        RegistryGrid: [],
        RegistryBuilding: [],
        RegistryGateway: [],
        RegistryDevice: [],
    }
    for c in range(communities):
        community = f"c-{c:03d}"
        lon0, lat0 = 116.5 + (c % 10) * 0.01, 35.3 + (c // 10) * 0.01
        rows[RegistryCommunity].append(
            {"id": community, "name": f"社区{c}", "town_id": f"town-{c // 10:02d}"}
        )
        for g in range(GRIDS):
            grid = f"g-{g:02d}"
            glon, glat = lon0 + (g % 5) * 0.002, lat0 + (g // 5) * 0.002
            rows[RegistryGrid].append(
                {
                    "community_id": community,
                    "id": grid,
                    "name": f"网格{g}",
                    "polygon": _square(glon, glat, 0.002),
                }
            )
            for b in range(BUILDINGS_PER_GRID):
                rows[RegistryBuilding].append(
                    {
                        "community_id": community,
                        "id": f"b-{g:02d}{b}",
                        "grid_id": grid,
                        "name": f"{g}号院{b}号楼",
                        "polygon": _square(glon + b * 0.0003, glat + 0.0005, 0.0002),
                    }
                )
        for gw in range(GATEWAYS):
            rows[RegistryGateway].append(
                {"community_id": community, "id": f"gw-{c:03d}-{gw}", "name": "", "created_at": now}
            )
        for d in range(devices_per_community):
            g, b = d % GRIDS, (d // GRIDS) % BUILDINGS_PER_GRID
            rows[RegistryDevice].append(
                {
                    "community_id": community,
                    "id": f"d-{d:04d}",
                    "type": TYPES[d % len(TYPES)],
                    "gateway_id": f"gw-{c:03d}-{d % GATEWAYS}",
                    "grid_id": f"g-{g:02d}",
                    "building_id": f"b-{g:02d}{b}",
                    "location": f"{d % 7 + 1}层",
                    "lat": lat0 + (g // 5) * 0.002 + 0.0006,
                    "lon": lon0 + (g % 5) * 0.002 + b * 0.0003,
                    "installed": None,
                    "state": "active",
                    "updated_at": now,
                }
            )
    with db.begin() as conn:
        conn.execute(insert(RegistryTown), towns)
        for model, batch in rows.items():
            for start in range(0, len(batch), 10_000):
                conn.execute(insert(model), batch[start : start + 10_000])
    with Session(db) as session, session.begin():
        version.bump(session, now)
    return len(rows[RegistryDevice])


def _catalog_figures(db: Engine, config_dir: Path, community: str) -> dict[str, Any]:
    profiles = load_sensor_types(config_dir)
    started = time.perf_counter()
    with Session(db) as session:
        catalog = Catalog(load_communities(session), profiles)
    load_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    with db.connect() as conn:
        conn.execute(text("SELECT * FROM registry_devices")).fetchall()
    rows_ms = (time.perf_counter() - started) * 1000
    del catalog
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    with Session(db) as session:
        held = Catalog(load_communities(session), profiles)
    gc.collect()
    catalog_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    replace_samples = []
    for other in [community, *sorted(held.communities)[:REPLACE_TRIALS]]:  # the first one warms up
        started = time.perf_counter()
        with Session(db) as session:
            replaced = held.replacing(load_communities(session, [other]))
        replace_samples.append((time.perf_counter() - started) * 1000)
    replace_ms = statistics.median(replace_samples[1:])
    with Session(db) as session:
        replaced = held.replacing(load_communities(session, [community]))
    rules = load_rules(config_dir, CasePolicy.load(config_dir).categories)
    engine = AlertEngine(rules, held)
    with Session(db) as session:
        everything = Catalog(load_communities(session), profiles)
    started = time.perf_counter()
    engine.use_catalog(everything)  # other profile objects: every community is indexed again
    index_ms = (time.perf_counter() - started) * 1000
    engine.use_catalog(held)
    started = time.perf_counter()
    engine.use_catalog(replaced)
    reindex_ms = (time.perf_counter() - started) * 1000
    return {
        "catalog_load_ms": round(load_ms, 1),
        "ceiling_rows_ms": round(rows_ms, 1),
        "catalog_replace_ms": round(replace_ms, 1),
        "catalog_mb": round(catalog_bytes / 1024**2, 1),
        "engine_index_ms": round(index_ms, 1),
        "engine_reindex_ms": round(reindex_ms, 1),
    }


ROLES: tuple[Role, ...] = ("ingest", "alerts")


def _reload_ms(db: Engine, url: str, config_dir: Path, community: str, trials: int) -> list[float]:
    """Commit → applied in both the ingest and the alerts process, once per trial."""
    types = {p.id for p in load_sensor_types(config_dir)}
    gateway = f"gw-{community[2:]}-0"
    spawn = multiprocessing.get_context("spawn")
    applied: Queue[Any] = spawn.Queue()
    watches = {role: spawn.Queue() for role in ROLES}
    children = [
        spawn.Process(
            target=follow,
            args=(role, url, config_dir, community, gateway, watches[role], applied),
            daemon=True,
        )
        for role in ROLES
    ]
    for child in children:
        child.start()
    samples = []
    try:
        ready = {_next(applied, 300)[0] for _ in ROLES}
        assert ready == set(ROLES), ready
        for n in range(trials):
            device = f"new-{n:03d}"
            for watch in watches.values():
                watch.put(device)
            time.sleep(0.1)  # the children are watching before the commit
            with Session(db) as session, session.begin():
                fields = {"id": device, "type": "water.level@1", "grid": "g-00"}
                editing.add_device(session, community, gateway, fields, types)
            committed = time.time()
            seen: dict[str, float] = {}
            while len(seen) < len(ROLES):
                role, found, at = _next(applied, 30)
                if found == device:
                    seen[role] = at
            samples.append((max(seen.values()) - committed) * 1000)
    finally:
        for watch in watches.values():
            watch.put(None)
        for child in children:
            child.join(10)
            if child.is_alive():
                child.terminate()
    return samples


def _next(applied: Queue[Any], timeout_s: float) -> tuple[str, str, float]:
    try:
        role, found, at = applied.get(timeout=timeout_s)
    except queue.Empty as err:
        raise RuntimeError(f"the ingest and alerts processes said nothing within {timeout_s} s") from err
    return role, found, at


def _api_figures(url: str, config_dir: Path, community: str, device: str, requests: int) -> dict[str, Any]:
    db = make_engine(url)
    with tempfile.TemporaryDirectory() as tmp:
        credentials = ensure_demo_operator(db, Path(tmp) / "credentials.json")
        db.dispose()
        with api_process(url, config_dir, Path(tmp)) as base:
            headers = {"Authorization": f"Bearer {credentials['token']}"}
            timings: dict[str, list[float]] = {"device": [], "map": []}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                paths = {
                    "device": f"/api/v1/communities/{community}/devices/{device}",
                    "map": f"/api/v1/communities/{community}/map",
                }
                for name, path in paths.items():
                    http.get(path).raise_for_status()  # warm
                    for _ in range(requests):
                        started = time.perf_counter()
                        http.get(path).raise_for_status()
                        timings[name].append((time.perf_counter() - started) * 1000)
                features = len(http.get(paths["map"]).json()["features"])
            page = console_ms(
                base, credentials, loads=requests, path=f"/console/devices/{community}/{device}"
            )
    record, community_map, device_page = (
        percentiles(timings["device"]),
        percentiles(timings["map"]),
        percentiles(page),
    )
    return {
        "device_record_p50_ms": record["p50"],
        "device_record_p99_ms": record["p99"],
        "map_p50_ms": community_map["p50"],
        "map_p99_ms": community_map["p99"],
        "map_features": features,
        "device_page_p50_ms": device_page["p50"],
        "device_page_p99_ms": device_page["p99"],
    }


def run(
    config_dir: Path,
    *,
    communities: int = COMMUNITIES,
    devices_per_community: int = DEVICES_PER_COMMUNITY,
    trials: int = 10,
    requests: int = 100,
    allow_sqlite: bool = False,
) -> dict[str, Any]:
    with relational_store(allow_sqlite, "registry") as (url, kind):
        create_all(url)
        db = make_engine(url)
        try:
            create_tables(db, Base.metadata, tables=list(TABLES))
            started = time.perf_counter()
            devices = populate(db, communities, devices_per_community)
            load_s = time.perf_counter() - started
            if kind == "postgresql":
                with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE"))
            middle = f"c-{communities // 2:03d}"  # any community: each is as large as the others
            catalog = _catalog_figures(db, config_dir, middle)
            reload = _reload_ms(db, url, config_dir, middle, trials)
        finally:
            db.dispose()
        api = _api_figures(url, config_dir, middle, f"d-{devices_per_community // 2:04d}", requests)
    reload_pct = percentiles(reload)
    return {
        "area": "registry",
        "store": kind,
        "communities": communities,
        "devices": devices,
        "load_s": round(load_s, 1),
        "reload_p50_ms": reload_pct["p50"],
        "reload_ms": round(max(reload), 1),  # the worst of the trials: a change seen by ingest and alerts
        **catalog,
        **api,
    }
