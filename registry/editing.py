"""Changing the registry one thing at a time (the API's and console's path), checked before written.

Every function takes the session of the caller's transaction, checks the change against what is
stored, writes it and counts a new registry version; a refused change raises :class:`RegistryError`
naming the field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.catalog import Building, Device, DeviceState, Grid
from contract.geo import PolygonCoordinates
from contract.ids import FieldName, Id
from registry import version
from registry.models import (
    RegistryBuilding,
    RegistryBus,
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
    """What an edit of a device may change; fields left out stay as they are. Moving: a new ``grid``
    (and ``building``), or ``gateway``."""

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
    bus: Id | None = Field(
        default=None, description="A bus of the gateway: the gateway is then told to poll it."
    )
    unit: int | None = Field(default=None, description="Modbus unit 1-247 on that bus.")
    poll_s: float | None = Field(
        default=None, description="Poll interval (seconds); the bus's default if left out."
    )
    options: dict[str, Any] | None = Field(default=None, description="max_interval_s, deadband.")


PLACEMENT_FIELDS = ("bus", "unit", "poll_s", "options")
MODBUS_KINDS = frozenset({"modbus_rtu", "modbus_tcp"})


class DeviceOptions(BaseModel):
    """What a gateway may be told beside unit and interval (the edge's DeviceConfig, same names)."""

    model_config = ConfigDict(extra="forbid")

    max_interval_s: float | None = Field(default=None, gt=0, le=86_400)
    deadband: dict[FieldName, float] = Field(default_factory=dict, max_length=64)

    @model_validator(mode="after")
    def _deadbands_not_negative(self) -> DeviceOptions:
        negative = sorted(f for f, v in self.deadband.items() if v < 0)
        if negative:
            raise ValueError(f"deadband of {negative} below zero")
        return self


class Placement(BaseModel):
    """Where a gateway reaches a device: its bus, its address there (Modbus unit 1-247, 0 is broadcast
    and 248-255 are reserved) and how often it is polled."""

    model_config = ConfigDict(extra="forbid")

    bus: Id | None = None
    unit: int | None = Field(default=None, ge=1, le=247)
    poll_s: float | None = Field(default=None, gt=0, le=86_400)
    options: DeviceOptions | None = None


def _placement(fields: dict[str, Any]) -> tuple[dict[str, Any], Placement]:
    """The catalog fields and the bus placement of a device's fields, apart."""
    rest = {k: v for k, v in fields.items() if k not in PLACEMENT_FIELDS}
    placement: Placement = _validated(Placement, {k: fields[k] for k in PLACEMENT_FIELDS if k in fields})
    if placement.bus is None and (
        placement.unit is not None or placement.poll_s is not None or placement.options is not None
    ):
        raise RegistryError("bus", "unit, poll_s and options describe a device on a bus: give its bus too")
    return rest, placement


def _check_bus(session: Session, community: str, gateway: str, device_id: str, placement: Placement) -> None:
    """The bus is the gateway's, and a Modbus device has a unit no other device of the bus holds."""
    if placement.bus is None:
        return
    bus = session.get(RegistryBus, (community, gateway, placement.bus))
    if bus is None:
        raise RegistryError("bus", f"{placement.bus!r} is not a bus of gateway {gateway}")
    if bus.kind not in MODBUS_KINDS:
        if placement.unit is not None:
            raise RegistryError("unit", f"bus {bus.id} is a {bus.kind}: its devices have no unit")
        return
    if placement.unit is None:
        raise RegistryError("unit", f"bus {bus.id} is Modbus: give the device's unit (1-247)")
    holder = session.scalar(
        select(RegistryDevice.id).where(
            RegistryDevice.community_id == community,
            RegistryDevice.gateway_id == gateway,
            RegistryDevice.bus_id == bus.id,
            RegistryDevice.unit == placement.unit,
            RegistryDevice.state != DeviceState.RETIRED.value,
            RegistryDevice.id != device_id,
        )
    )
    if holder is not None:
        raise RegistryError("unit", f"unit {placement.unit} of bus {bus.id} is already device {holder!r}")


def _place(row: RegistryDevice, placement: Placement) -> None:
    row.bus_id, row.unit, row.poll_s = placement.bus, placement.unit, placement.poll_s
    row.options = placement.options.model_dump(exclude_defaults=True) if placement.options else None


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
    fields, placement = _placement(fields)
    device: Device = _validated(Device, fields)
    if device.type not in known_types:
        raise RegistryError("type", f"unknown sensor type {device.type!r}")
    if session.get(RegistryDevice, (community, device.id)) is not None:
        raise RegistryError("id", f"community {community} already has a device {device.id!r}")
    _check_place(session, community, device, gateway)
    _check_bus(session, community, gateway, device.id, placement)
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
    _place(row, placement)
    session.add(row)
    session.flush()
    version.bump(session, now, communities=[community])
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


def placement_fields(row: RegistryDevice) -> dict[str, Any]:
    """A stored device's bus placement, in the shape :func:`add_device` takes it."""
    return {"bus": row.bus_id, "unit": row.unit, "poll_s": row.poll_s, "options": row.options}


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
    if gateway != row.gateway_id and "bus" not in given:
        given["bus"] = None  # a device moved to another gateway leaves its old bus
    if "bus" in given and given["bus"] is None:
        for placed in ("unit", "poll_s", "options"):  # off its bus, it has no address there
            given.setdefault(placed, None)
    merged = {**device_fields(row), **placement_fields(row), **given}
    merged, placement = _placement(merged)
    device: Device = _validated(Device, merged)
    if device.type != row.type and device.type not in known_types:
        raise RegistryError("type", f"unknown sensor type {device.type!r}")
    if device.state != DeviceState.RETIRED:
        _check_place(session, community, device, gateway)
        _check_bus(session, community, gateway, device.id, placement)
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
    _place(row, placement)
    session.flush()
    version.bump(session, now, communities=[community])
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
    version.bump(session, communities=())
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
    version.bump(session, communities=[community.id])
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
    version.bump(session, communities=[community])
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
    version.bump(session, communities=[community])
    return row


def set_polygon(session: Session, community: str, grid: str, polygon: Any) -> RegistryGrid:
    row = session.get(RegistryGrid, (community, grid))
    if row is None:
        raise RegistryError("grid", f"community {community} has no grid {grid!r}", missing=True)

    class _Outline(BaseModel):
        polygon: PolygonCoordinates | None

    row.polygon = _validated(_Outline, {"polygon": polygon}).polygon
    session.flush()
    version.bump(session, communities=[community])
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
    version.bump(session, now, communities=[community])
    return row


class BusIn(BaseModel):
    """A gateway's bus; names and defaults as in a gateway file (``edge.gateway_config.BusConfig``)."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    kind: Literal["modbus_rtu", "modbus_tcp", "serial_line"]
    port: str | None = Field(default=None, min_length=1, max_length=200, description="e.g. /dev/ttyUSB0")
    host: str | None = Field(default=None, min_length=1, max_length=253)
    tcp_port: int | None = Field(default=None, ge=1, le=65535)
    baudrate: int = Field(default=9600, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1
    timeout_s: float = Field(default=0.5, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=5)

    @model_validator(mode="after")
    def _reachable(self) -> BusIn:
        if self.kind == "modbus_tcp" and self.host is None:
            raise ValueError("a modbus_tcp bus needs a host")
        if self.kind != "modbus_tcp" and self.port is None:
            raise ValueError(f"a {self.kind} bus needs a serial port")
        return self


def add_bus(session: Session, community: str, gateway: str, fields: dict[str, Any]) -> RegistryBus:
    """A new bus of a gateway: from then on the registry, not the gateway's file, says what it polls."""
    if session.get(RegistryGateway, (community, gateway)) is None:
        raise RegistryError("gateway", f"community {community} has no gateway {gateway!r}", missing=True)
    bus: BusIn = _validated(BusIn, fields)
    if session.get(RegistryBus, (community, gateway, bus.id)) is not None:
        raise RegistryError("id", f"gateway {gateway} already has a bus {bus.id!r}")
    if bus.port is not None:
        # Two buses on one port would be two masters on one wire.
        taken = session.scalar(
            select(RegistryBus.id).where(
                RegistryBus.community_id == community,
                RegistryBus.gateway_id == gateway,
                RegistryBus.port == bus.port,
            )
        )
        if taken is not None:
            raise RegistryError("port", f"{bus.port} is already bus {taken!r} of gateway {gateway}")
    now = _now()
    row = RegistryBus(community_id=community, gateway_id=gateway, **bus.model_dump(), updated_at=now)
    session.add(row)
    session.flush()
    version.bump(session, now, communities=[community])
    return row
