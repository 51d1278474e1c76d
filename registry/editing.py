"""Changing the registry one thing at a time (the API's and console's path), checked before written.

Every function takes the session of the caller's transaction, checks the change against what is
stored, writes it and counts a new registry version; a refused change raises :class:`RegistryError`
naming the field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.catalog import Building, Device, DeviceState, Grid
from contract.geo import PolygonCoordinates
from contract.ids import Id
from registry import version
from registry.models import (
    RegistryBuilding,
    RegistryCommunity,
    RegistryDevice,
    RegistryGateway,
    RegistryGrid,
    RegistryTown,
)


class RegistryError(ValueError):
    """A change refused: ``field`` is what to fix (HTTP 422, or 404 when ``missing``)."""

    def __init__(self, field: str, message: str, *, missing: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.missing = missing


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise RegistryError(field, first["msg"].removeprefix("Value error, ")) from err


class DeviceChange(BaseModel):
    """What an edit of a device may change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = None
    gateway: Id | None = None
    grid: Id | None = None
    building: Id | None = None
    location: str | None = Field(default=None, max_length=200)
    lat: float | None = None
    lon: float | None = None
    datum: str | None = None
    installed: date | None = None
    state: DeviceState | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _community(session: Session, community: str) -> RegistryCommunity:
    row = session.get(RegistryCommunity, community)
    if row is None:
        raise RegistryError("community", f"{community!r} is not in the registry", missing=True)
    return row


def _check_place(session: Session, community: str, device: Device, gateway: str) -> None:
    if session.get(RegistryGateway, (community, gateway)) is None:
        raise RegistryError("gateway", f"{gateway!r} is not a gateway of community {community}")
    if session.get(RegistryGrid, (community, device.grid)) is None:
        raise RegistryError("grid", f"{device.grid!r} is not a grid of community {community}")
    if device.building is not None:
        building = session.get(RegistryBuilding, (community, device.building))
        if building is None or building.grid_id != device.grid:
            raise RegistryError("building", f"{device.building!r} is not a building of grid {device.grid!r}")


def add_device(
    session: Session, community: str, gateway: str, fields: dict[str, Any], known_types: Collection[str]
) -> RegistryDevice:
    """A new device of a community (``fields`` as in the community files: id, type, grid, ...)."""
    _community(session, community)
    device: Device = _validated(Device, fields)
    if device.type not in known_types:
        raise RegistryError("type", f"unknown sensor type {device.type!r}")
    if session.get(RegistryDevice, (community, device.id)) is not None:
        raise RegistryError("id", f"community {community} already has a device {device.id!r}")
    _check_place(session, community, device, gateway)
    now = _now()
    row = RegistryDevice(
        community_id=community,
        id=device.id,
        type=device.type,
        gateway_id=gateway,
        grid_id=device.grid,
        building_id=device.building,
        location=device.location,
        lat=device.lat,
        lon=device.lon,
        installed=device.installed,
        state=device.state.value,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    version.bump(session, now)
    return row


def device_fields(row: RegistryDevice) -> dict[str, Any]:
    """A stored device in the shape :class:`contract.catalog.Device` validates."""
    return {
        "id": row.id,
        "type": row.type,
        "grid": row.grid_id,
        "building": row.building_id,
        "location": row.location,
        "lat": row.lat,
        "lon": row.lon,
        "installed": row.installed,
        "state": row.state,
    }


def change_device(
    session: Session, community: str, device_id: str, change: dict[str, Any], known_types: Collection[str]
) -> RegistryDevice:
    """Edit, move (grid, building, gateway), put in maintenance or retire a device."""
    edit: DeviceChange = _validated(DeviceChange, change)
    row = session.get(RegistryDevice, (community, device_id), with_for_update=True)
    if row is None:
        raise RegistryError("device", f"community {community} has no device {device_id!r}", missing=True)
    given = edit.model_dump(exclude_unset=True)
    gateway = given.pop("gateway", None) or row.gateway_id
    if "grid" in given and "building" not in given:
        given["building"] = None  # a device moved to another grid leaves its old building
    merged = {**device_fields(row), **given}
    device: Device = _validated(Device, merged)
    if device.type != row.type and device.type not in known_types:
        raise RegistryError("type", f"unknown sensor type {device.type!r}")
    if device.state != DeviceState.RETIRED:
        _check_place(session, community, device, gateway)
    if row.state == DeviceState.RETIRED.value and device.state != DeviceState.RETIRED:
        raise RegistryError("state", "a retired device stays retired: register a new device instead")
    now = _now()
    row.type, row.gateway_id, row.grid_id, row.building_id = (
        device.type,
        gateway,
        device.grid,
        device.building,
    )
    row.location, row.lat, row.lon, row.installed = device.location, device.lat, device.lon, device.installed
    row.state, row.updated_at = device.state.value, now
    session.flush()
    version.bump(session, now)
    return row


class TownIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str = Field(min_length=1, max_length=128)
    district: str = Field(default="", max_length=128)


class CommunityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str = Field(min_length=1, max_length=128)
    town: Id


class GatewayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str = Field(default="", max_length=128)


def add_town(session: Session, fields: dict[str, Any]) -> RegistryTown:
    town: TownIn = _validated(TownIn, fields)
    if session.get(RegistryTown, town.id) is not None:
        raise RegistryError("id", f"town {town.id!r} already exists")
    row = RegistryTown(id=town.id, name=town.name, district=town.district)
    session.add(row)
    session.flush()
    version.bump(session)
    return row


def add_community(session: Session, fields: dict[str, Any]) -> RegistryCommunity:
    community: CommunityIn = _validated(CommunityIn, fields)
    if session.get(RegistryTown, community.town) is None:
        raise RegistryError("town", f"{community.town!r} is not a town of the registry")
    if session.get(RegistryCommunity, community.id) is not None:
        raise RegistryError("id", f"community {community.id!r} already exists")
    row = RegistryCommunity(id=community.id, name=community.name, town_id=community.town)
    session.add(row)
    session.flush()
    version.bump(session)
    return row


def add_grid(session: Session, community: str, fields: dict[str, Any]) -> RegistryGrid:
    _community(session, community)
    grid: Grid = _validated(Grid, {**fields, "buildings": []})
    if fields.get("buildings"):
        raise RegistryError("buildings", "add the grid first, then its buildings")
    if session.get(RegistryGrid, (community, grid.id)) is not None:
        raise RegistryError("id", f"community {community} already has a grid {grid.id!r}")
    row = RegistryGrid(community_id=community, id=grid.id, name=grid.name, polygon=grid.polygon)
    session.add(row)
    session.flush()
    version.bump(session)
    return row


def add_building(session: Session, community: str, grid: str, fields: dict[str, Any]) -> RegistryBuilding:
    if session.get(RegistryGrid, (community, grid)) is None:
        raise RegistryError("grid", f"community {community} has no grid {grid!r}", missing=True)
    building: Building = _validated(Building, fields)
    if session.get(RegistryBuilding, (community, building.id)) is not None:
        raise RegistryError("id", f"community {community} already has a building {building.id!r}")
    row = RegistryBuilding(
        community_id=community, id=building.id, grid_id=grid, name=building.name, polygon=building.polygon
    )
    session.add(row)
    session.flush()
    version.bump(session)
    return row


def set_polygon(session: Session, community: str, grid: str, polygon: Any) -> RegistryGrid:
    row = session.get(RegistryGrid, (community, grid))
    if row is None:
        raise RegistryError("grid", f"community {community} has no grid {grid!r}", missing=True)

    class _Outline(BaseModel):
        polygon: PolygonCoordinates | None

    row.polygon = _validated(_Outline, {"polygon": polygon}).polygon
    session.flush()
    version.bump(session)
    return row


def add_gateway(session: Session, community: str, fields: dict[str, Any]) -> RegistryGateway:
    _community(session, community)
    gateway: GatewayIn = _validated(GatewayIn, fields)
    if session.get(RegistryGateway, (community, gateway.id)) is not None:
        raise RegistryError("id", f"community {community} already has a gateway {gateway.id!r}")
    # A gateway id names one box on the broker (its account): it must be unique in the district.
    elsewhere = session.scalar(select(RegistryGateway.community_id).where(RegistryGateway.id == gateway.id))
    if elsewhere is not None:
        raise RegistryError("id", f"gateway {gateway.id!r} is already registered in community {elsewhere}")
    now = _now()
    row = RegistryGateway(community_id=community, id=gateway.id, name=gateway.name, created_at=now)
    session.add(row)
    session.flush()
    version.bump(session, now)
    return row
