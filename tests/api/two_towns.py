"""A district of two towns for the abuse tests: the pilot's config plus a copy of 竹竿巷 renamed 新河
(town "xinhe"), so every resource exists on both sides of a jurisdiction line.

Data goes in through the real code paths: flooding readings through the alert engine into the case
book (alerts + cases with evidence), reported cases through the case flow, telemetry into the store,
device and gateway status through the status tables, silences through the silence store.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.fleet import record_devices, record_gateway
from alerts.intake import CaseBook
from alerts.rules import load_rules
from alerts.silences import SilenceIn, SilenceStore
from api import accounts
from api.settings import ApiSettings
from cases.actions import CaseFlow, Report
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading, StateMessage
from contract.catalog import load_catalog
from series.factory import open_store
from series.store import Point
from tests.platform import CONFIG_DIR
from yiwang.schema import create_all

# Town A is the pilot (yuehe: 竹竿巷); town B is its renamed copy.
A, B = "zhuganxiang", "xinhe"
TOWN_A, TOWN_B = "yuehe", "xinhe-town"


def _rename(value: str) -> str:
    """Ids of the copy: grids, devices and gateways get an ``x`` prefix (ids are unique district-wide)."""
    return "x" + value


def make_config(target: Path) -> Path:
    """The pilot's config directory plus community ``xinhe`` in a second town."""
    shutil.copytree(CONFIG_DIR, target)
    community: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "communities" / f"{A}.yaml").read_text())
    community |= {"id": B, "name": "新河社区", "town": "新河镇"}
    for grid in community["grids"]:
        grid["id"] = _rename(grid["id"])
    for gateway in community["gateways"]:
        gateway["id"] = _rename(gateway["id"])
        for device in gateway["devices"]:
            device["id"], device["grid"] = _rename(device["id"]), _rename(device["grid"])
    (target / "communities" / f"{B}.yaml").write_text(yaml.safe_dump(community, allow_unicode=True))
    org: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "organisation.yaml").read_text())
    org["towns"].append({"id": TOWN_B, "name": "新河镇", "communities": [B]})
    org["people"].append({"username": "ma.li", "name": "马丽", "role": "grid_worker", "unit": "xg-north"})
    org["rosters"].append({"unit": "xg-north", "primary": "ma.li", "backup": "ma.li"})
    (target / "organisation.yaml").write_text(yaml.safe_dump(org, allow_unicode=True))
    return target


# One account per role; the grid-bound roles sit in town A's north grid.
ROLE_SCOPES: dict[str, dict[str, str]] = {
    "admin": {},
    "district_operator": {},
    "supervisor": {},
    "town_operator": {"town": TOWN_A},
    "grid_worker": {"community": A, "grid": "g-north"},
    "building_head": {"community": A, "grid": "g-north"},
    "department_handler": {"department": "water"},
}


@dataclass(frozen=True)
class Seeded:
    settings: ApiSettings
    tokens: dict[str, str]  # username -> bearer token
    cases: dict[str, list[int]]  # community -> case ids
    silences: dict[str, int]  # community -> silence id


def seed(tmp: Path, database_url: str | None = None) -> Seeded:
    """A fresh database and series store with accounts, cases, alerts, telemetry and silences in both towns.

    ``database_url``: an empty (or freshly migrated) relational store; by default a SQLite file in ``tmp``.
    """
    config = make_config(tmp / "config")
    settings = ApiSettings(
        database_url=database_url or f"sqlite:///{tmp}/yiwang.db",
        series_url=f"sqlite:///{tmp}/series.db",
        config_dir=config,
        mqtt_port=1,  # nothing listens there: the broker shows as down
    )
    create_all(settings.database_url)
    db = make_engine(settings.database_url)
    tokens = {}
    for role, scope in ROLE_SCOPES.items():
        user = accounts.create_user(db, role, "pw-" + role, role, **scope)
        tokens[role] = accounts.issue_token(db, user, f"{role}'s token")
    # The town-B operator and grid worker, to look across the line from the other side.
    for username, role, scope in (
        ("town_b", "town_operator", {"town": TOWN_B}),
        ("worker_b", "grid_worker", {"community": B, "grid": "xg-north"}),
    ):
        user = accounts.create_user(db, username, "pw-" + username, role, **scope)
        tokens[username] = accounts.issue_token(db, user)

    policy = CasePolicy.load(config)
    catalog = load_catalog(config)
    alert_engine = AlertEngine(load_rules(config, policy.categories), catalog)
    book = CaseBook(db, policy, timedelta(minutes=1))
    flow = CaseFlow(db, policy)
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    store = open_store(settings.series_url)
    cases: dict[str, list[int]] = {}
    silences: dict[str, int] = {}
    for community, prefix in ((A, ""), (B, "x")):
        device, gateway, grid = f"{prefix}wl-01", f"{prefix}gw-01", f"{prefix}g-north"
        # A flood: 70 cm, then drained — an alert with evidence, and a sensor case.
        for offset, level in ((0, 70), (1, 1)):
            reading = Reading(device=device, ts=ms + offset, values={"level_cm": level})
            book.apply(alert_engine.on_reading(community, gateway, reading), now=now)
        tags = {"community": community, "gateway": gateway, "device": device, "grid": grid}
        store.write([Point("water.level", tags, {"level_cm": float(v)}, ms - 60_000 * v) for v in range(5)])
        flow.report(
            Report(community, grid, "fire_lane_blocked", f"{community} 消防通道占用", "x"), actor="seed"
        )
        # It merges into the sensor case; that case goes up to the water department (镇呼区应).
        reported, merged_into = flow.report(
            Report(community, grid, "flooding", f"{community} 积水", "y"), actor="seed"
        )
        flood = merged_into or reported
        for action, params in (
            ("accept", {}),
            ("verify", {}),
            ("assign", {"assignee": "li.na" if not prefix else "ma.li"}),
            ("sign", {}),
            ("call_up", {"department": "water", "approved_by": "head"}),
        ):
            flow.act(flood, action, actor="seed", params=params)
        record_devices(db, {(community, device): ms})
        record_gateway(db, community, gateway, StateMessage.model_validate({"online": True}))
        silence = SilenceIn.model_validate(
            {"matchers": {"community": community, "device": device}, "ends_at": now + timedelta(days=1)}
        )
        silences[community] = SilenceStore(db).add(silence, author="seed").id
    store.close()
    with Session(db) as session:
        for case in session.scalars(select(Case).order_by(Case.id)):
            cases.setdefault(case.community, []).append(case.id)
    db.dispose()
    return Seeded(settings, tokens, cases, silences)
