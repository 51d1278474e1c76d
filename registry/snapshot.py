"""The stored registry as the catalog's models: what services load and what export writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy.orm import Session

from contract.catalog import Building, Community, Device, DeviceState, Gateway, Grid
from registry.rows import Rows, from_database


def communities_of(rows: Rows) -> list[Community]:
    """Rows as community models; stored rows were validated when written, so they are not re-checked."""
    towns = rows["town"]
    grids: dict[str, list[Grid]] = defaultdict(list)
    buildings: dict[tuple[str, str], list[Building]] = defaultdict(list)
    for (community, building_id), row in sorted(rows["building"].items()):
        buildings[(community, row["grid_id"])].append(
            Building.model_construct(id=building_id, name=row["name"], polygon=row["polygon"])
        )
    for (community, grid_id), row in sorted(rows["grid"].items()):
        grids[community].append(
            Grid.model_construct(
                id=grid_id,
                name=row["name"],
                polygon=row["polygon"],
                buildings=buildings.get((community, grid_id), []),
            )
        )
    devices: dict[tuple[str, str], list[Device]] = defaultdict(list)
    for (community, device_id), row in sorted(rows["device"].items()):
        devices[(community, row["gateway_id"])].append(
            Device.model_construct(
                id=device_id,
                type=row["type"],
                grid=row["grid_id"],
                building=row["building_id"],
                location=row["location"],
                lat=row["lat"],
                lon=row["lon"],
                datum="wgs84",
                installed=row["installed"],
                state=DeviceState(row["state"]),
            )
        )
    gateways: dict[str, list[Gateway]] = defaultdict(list)
    for (community, gateway_id), row in sorted(rows["gateway"].items()):
        gateways[community].append(
            Gateway.model_construct(
                id=gateway_id, name=row["name"], devices=devices.get((community, gateway_id), [])
            )
        )
    result = []
    for (community_id,), row in sorted(rows["community"].items()):
        town = towns.get((row["town_id"],), {"name": "", "district": ""})
        result.append(
            Community.model_construct(
                id=community_id,
                name=row["name"],
                town=town["name"],
                district=town["district"],
                grids=grids.get(community_id, []),
                gateways=gateways.get(community_id, []),
            )
        )
    return result


def load_communities(session: Session, communities: Collection[str] | None = None) -> list[Community]:
    return communities_of(from_database(session, communities))
