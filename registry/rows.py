"""The registry as plain rows, so a file and the database can be compared field by field.

``Rows`` maps a table name to its rows by key; a row is the dict of the columns a person edits (never
timestamps). Both sides of an import are brought to this shape: the YAML catalog with
:func:`from_communities` and the database with :func:`from_database`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.catalog import Community
from registry.models import (
    RegistryBuilding,
    RegistryCommunity,
    RegistryDevice,
    RegistryGateway,
    RegistryGrid,
    RegistryTown,
)

Key = tuple[str, ...]
Row = dict[str, Any]
Rows = dict[str, dict[Key, Row]]

# Tables in the order rows are added (parents first); removals go in reverse.
ORDER = ("town", "community", "grid", "building", "gateway", "device")
MODELS: dict[str, Any] = {
    "town": RegistryTown,
    "community": RegistryCommunity,
    "grid": RegistryGrid,
    "building": RegistryBuilding,
    "gateway": RegistryGateway,
    "device": RegistryDevice,
}
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "town": ("id",),
    "community": ("id",),
    "grid": ("community_id", "id"),
    "building": ("community_id", "id"),
    "gateway": ("community_id", "id"),
    "device": ("community_id", "id"),
}
VALUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "town": ("name", "district"),
    "community": ("name", "town_id"),
    "grid": ("name", "polygon"),
    "building": ("grid_id", "name", "polygon"),
    "gateway": ("name",),
    "device": (
        "type",
        "gateway_id",
        "grid_id",
        "building_id",
        "location",
        "lat",
        "lon",
        "installed",
        "state",
    ),
}


@dataclass(frozen=True, slots=True)
class Town:
    """A town (街道/镇) as the organisation names it, with the communities it is responsible for."""

    id: str
    name: str
    district: str
    communities: tuple[str, ...]


def empty() -> Rows:
    return {table: {} for table in ORDER}


def from_communities(communities: Iterable[Community], towns: Iterable[Town]) -> Rows:
    """The rows a set of community files describes; each community's town is found in ``towns``."""
    rows = empty()
    town_of = {c: t for t in towns for c in t.communities}
    for community in communities:
        town = town_of.get(community.id)
        if town is None:
            raise LookupError(
                f"community {community.id}: no town of the organisation lists it under `communities`"
            )
        rows["town"][(town.id,)] = {"name": town.name, "district": town.district}
        rows["community"][(community.id,)] = {"name": community.name, "town_id": town.id}
        for grid in community.grids:
            rows["grid"][(community.id, grid.id)] = {"name": grid.name, "polygon": grid.polygon}
            for building in grid.buildings:
                rows["building"][(community.id, building.id)] = {
                    "grid_id": grid.id,
                    "name": building.name,
                    "polygon": building.polygon,
                }
        for gateway in community.gateways:
            rows["gateway"][(community.id, gateway.id)] = {"name": gateway.name}
            for device in gateway.devices:
                rows["device"][(community.id, device.id)] = {
                    "type": device.type,
                    "gateway_id": gateway.id,
                    "grid_id": device.grid,
                    "building_id": device.building,
                    "location": device.location,
                    "lat": device.lat,
                    "lon": device.lon,
                    "installed": device.installed,
                    "state": device.state.value,
                }
    return rows


def from_database(
    session: Session, communities: Collection[str] | None = None, towns: Collection[str] = ()
) -> Rows:
    """The stored rows: all of them, or those of some communities plus the towns they (or ``towns``)
    name."""
    rows = empty()
    for table in ORDER:
        model = MODELS[table]
        query = select(model)
        if communities is not None:
            if table == "town":
                town_ids = select(RegistryCommunity.town_id).where(RegistryCommunity.id.in_(communities))
                query = query.where(RegistryTown.id.in_(town_ids) | RegistryTown.id.in_(towns))
            elif table == "community":
                query = query.where(RegistryCommunity.id.in_(communities))
            else:
                query = query.where(model.community_id.in_(communities))
        # Plain column tuples, not ORM objects: a district's 100,000 devices load ~4× faster.
        keys, values = KEY_COLUMNS[table], VALUE_COLUMNS[table]
        columns = [getattr(model, c) for c in (*keys, *values)]
        found = rows[table]
        width = len(keys)
        for record in session.execute(query.with_only_columns(*columns)):
            found[tuple(record[:width])] = dict(zip(values, record[width:], strict=True))
    return rows
