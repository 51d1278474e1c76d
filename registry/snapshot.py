"""The stored registry as the catalog's models: what services load and what export writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from contract.catalog import Building, Community, Device, DeviceState, Gateway, Grid
from registry.rows import Rows, from_database

M = TypeVar("M", bound=BaseModel)

# The models are made without validation (stored rows were validated when written) and share what
# every instance of a model would otherwise hold its own copy of: the set of fields given (the same
# for all, ~0.7 kB each) and the repeated strings (grid, building, type, location). At 100,000 devices
# that is most of the catalog's memory (see BENCHMARKS.md, registry).
_FIELDS_SET: dict[type[BaseModel], set[str]] = {}


def _construct(model: type[M], **values: Any) -> M:
    made = model.model_construct(**values)
    shared = _FIELDS_SET.setdefault(model, set(made.__pydantic_fields_set__))
    if made.__pydantic_fields_set__ == shared:
        # Frozen models never add to it, and model_copy copies it before an update.
        object.__setattr__(made, "__pydantic_fields_set__", shared)
    return made


class _Strings:
    """One string object per distinct value within a load (not sys.intern: nothing outlives the
    catalog that holds it)."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, value: str | None) -> Any:
        if value is None:
            return None
        return self._seen.setdefault(value, value)


def communities_of(rows: Rows) -> list[Community]:
    """Rows as community models; stored rows were validated when written, so they are not re-checked."""
    one = _Strings()
    towns = rows["town"]
    grids: dict[str, list[Grid]] = defaultdict(list)
    buildings: dict[tuple[str, str], list[Building]] = defaultdict(list)
    for (community, building_id), row in sorted(rows["building"].items()):
        buildings[(community, row["grid_id"])].append(
            _construct(Building, id=one(building_id), name=row["name"], polygon=row["polygon"])
        )
    for (community, grid_id), row in sorted(rows["grid"].items()):
        grids[community].append(
            _construct(
                Grid,
                id=one(grid_id),
                name=row["name"],
                polygon=row["polygon"],
                buildings=buildings.get((community, grid_id), []),
            )
        )
    devices: dict[tuple[str, str], list[Device]] = defaultdict(list)
    for (community, device_id), row in sorted(rows["device"].items()):
        devices[(community, row["gateway_id"])].append(
            _construct(
                Device,
                id=device_id,
                type=one(row["type"]),
                grid=one(row["grid_id"]),
                building=one(row["building_id"]),
                location=one(row["location"]),
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
            _construct(
                Gateway,
                id=one(gateway_id),
                name=row["name"],
                devices=devices.get((community, gateway_id), []),
            )
        )
    result = []
    for (community_id,), row in sorted(rows["community"].items()):
        town = towns.get((row["town_id"],), {"name": "", "district": ""})
        result.append(
            _construct(
                Community,
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
