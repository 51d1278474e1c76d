"""The registry through the API: towns, communities, grids, buildings, gateways and devices.

Reads are scoped like everything else (a town operator sees its town's communities, a grid worker
its grid). Writes: only admin creates towns; district staff create communities; district staff and
the operator of a community's town add and change its grids, buildings, gateways and devices. Every
write is in the audit log (middleware) and bumps the registry version, which ingest, alerts and the
API itself pick up within seconds (``registry.live``). Errors name the field to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.scope import may_add_towns, may_manage_registry, sees_area, sees_district, sees_town
from contract.catalog import DeviceState
from contract.ids import ID_PATTERN, Id
from registry import editing
from registry.editing import CommunityIn, DeviceChange, RegistryError, TownIn
from registry.models import (
    RegistryBuilding,
    RegistryCommunity,
    RegistryDevice,
    RegistryGateway,
    RegistryGrid,
    RegistryTown,
)

router = APIRouter(prefix="/api/v1", tags=["registry"])
PathId = Annotated[str, Path(pattern=ID_PATTERN)]
T = TypeVar("T")

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("Not yours to change"),
    404: problem("No such community, grid or device"),
    422: problem("The field named in the answer is wrong"),
}


class TownOut(BaseModel):
    id: str
    name: str
    district: str
    communities: int


class CommunityOut(BaseModel):
    id: str
    name: str
    town: str
    grids: int
    devices: int


class BuildingOut(BaseModel):
    id: str
    name: str
    polygon: list[list[list[float]]] | None


class GridOut(BaseModel):
    community: str
    id: str
    name: str
    polygon: list[list[list[float]]] | None
    buildings: list[BuildingOut]


class RegisteredDevice(BaseModel):
    community: str
    id: str
    type: str
    gateway: str
    grid: str
    building: str | None
    location: str
    lat: float | None
    lon: float | None
    installed: date | None
    state: DeviceState
    updated_at: datetime
    bus: str | None = Field(default=None, description="The gateway's bus it is polled on (desired config).")
    unit: int | None = Field(default=None, description="Its address on the bus (Modbus unit).")
    poll_s: float | None = None
    options: dict[str, Any] | None = None


class RegisteredGateway(BaseModel):
    community: str
    id: str
    name: str
    created_at: datetime


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: Id
    id: str = Field(description="Unique within the community.")
    type: str = Field(description="A sensor type, e.g. env.th@1.")
    gateway: Id
    grid: Id
    building: Id | None = None
    location: str = Field(default="", max_length=200, description="Where it is mounted.")
    lat: float | None = Field(default=None, description="Latitude, WGS-84 unless datum is gcj02.")
    lon: float | None = None
    datum: str = Field(default="wgs84", description="wgs84, or gcj02 for points read off a Chinese map.")
    installed: date | None = None
    state: DeviceState = DeviceState.ACTIVE
    bus: Id | None = Field(
        default=None, description="A bus of the gateway: the gateway is then told to poll it."
    )
    unit: int | None = Field(default=None, description="Modbus unit 1-247 on that bus.")
    poll_s: float | None = Field(
        default=None, description="Poll interval (seconds); the bus's default if left out."
    )
    options: dict[str, Any] | None = Field(default=None, description="max_interval_s, deadband.")


class GridIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str = Field(min_length=1, max_length=128)
    polygon: list[list[list[float]]] | None = Field(
        default=None, description="GeoJSON Polygon coordinates: closed rings of [longitude, latitude]."
    )


class BuildingIn(GridIn):
    pass


class GatewayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: Id
    id: Id
    name: str = Field(default="", max_length=128)


def _write(resources: ResourcesDep, change: Callable[[Session], T]) -> T:
    """Run one registry change in its own transaction; a refusal becomes 422 (or 404) naming the field."""
    try:
        with Session(resources.db, expire_on_commit=False) as session, session.begin():
            result = change(session)
    except RegistryError as err:
        code = status.HTTP_404_NOT_FOUND if err.missing else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, [{"loc": ["body", err.field], "msg": err.message}]) from err
    resources.live.refresh()  # this process sees its own change at once; the others within a poll
    return result


def _may_manage(user: User, resources: ResourcesDep, community: str) -> None:
    if may_manage_registry(user, resources.policy, community):
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, f"the registry of community {community} is not yours to change"
    )


def _known_types(resources: ResourcesDep) -> set[str]:
    return set(resources.catalog.profiles)


def _device_out(row: RegistryDevice) -> RegisteredDevice:
    return RegisteredDevice(
        community=row.community_id,
        id=row.id,
        type=row.type,
        gateway=row.gateway_id,
        grid=row.grid_id,
        building=row.building_id,
        location=row.location,
        lat=row.lat,
        lon=row.lon,
        installed=row.installed,
        state=DeviceState(row.state),
        updated_at=row.updated_at,
        bus=row.bus_id,
        unit=row.unit,
        poll_s=row.poll_s,
        options=row.options,
    )


@router.get("/towns", response_model=list[TownOut])
def list_towns(resources: ResourcesDep, user: CurrentUser) -> list[TownOut]:
    """The towns (街道/镇) of the district in your jurisdiction, with how many communities each has."""
    with Session(resources.db) as session:
        counts = dict(
            session.execute(
                select(RegistryCommunity.town_id, func.count()).group_by(RegistryCommunity.town_id)
            ).all()
        )
        towns = session.scalars(select(RegistryTown).order_by(RegistryTown.id)).all()
    return [
        TownOut(id=t.id, name=t.name, district=t.district, communities=counts.get(t.id, 0))
        for t in towns
        if sees_town(user, t.id)
    ]


@router.post("/towns", status_code=201, response_model=TownOut, responses=WRITE_ERRORS)
def add_town(body: TownIn, resources: ResourcesDep, user: CurrentUser) -> TownOut:
    """A new town; admin only."""
    if not may_add_towns(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin adds towns")
    row = _write(resources, lambda s: editing.add_town(s, body.model_dump()))
    return TownOut(id=row.id, name=row.name, district=row.district, communities=0)


@router.get("/communities", response_model=list[CommunityOut])
def list_communities(resources: ResourcesDep, user: CurrentUser) -> list[CommunityOut]:
    """The communities in your jurisdiction, with how many grids and devices (not retired) each has."""
    with Session(resources.db) as session:
        grids = dict(
            session.execute(
                select(RegistryGrid.community_id, func.count()).group_by(RegistryGrid.community_id)
            ).all()
        )
        devices = dict(
            session.execute(
                select(RegistryDevice.community_id, func.count())
                .where(RegistryDevice.state != DeviceState.RETIRED.value)
                .group_by(RegistryDevice.community_id)
            ).all()
        )
        rows = session.scalars(select(RegistryCommunity).order_by(RegistryCommunity.id)).all()
    return [
        CommunityOut(
            id=c.id, name=c.name, town=c.town_id, grids=grids.get(c.id, 0), devices=devices.get(c.id, 0)
        )
        for c in rows
        if sees_area(user, resources.policy, c.id)
    ]


@router.post("/communities", status_code=201, response_model=CommunityOut, responses=WRITE_ERRORS)
def add_community(body: CommunityIn, resources: ResourcesDep, user: CurrentUser) -> CommunityOut:
    """A new community of a town; district staff only (towns are given their communities by the district)."""
    if not sees_district(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only district staff add communities")
    row = _write(resources, lambda s: editing.add_community(s, body.model_dump()))
    return CommunityOut(id=row.id, name=row.name, town=row.town_id, grids=0, devices=0)


def _grids_out(session: Session, community: str) -> list[GridOut]:
    buildings: dict[str, list[BuildingOut]] = {}
    for b in session.scalars(
        select(RegistryBuilding)
        .where(RegistryBuilding.community_id == community)
        .order_by(RegistryBuilding.id)
    ):
        buildings.setdefault(b.grid_id, []).append(BuildingOut(id=b.id, name=b.name, polygon=b.polygon))
    return [
        GridOut(
            community=community, id=g.id, name=g.name, polygon=g.polygon, buildings=buildings.get(g.id, [])
        )
        for g in session.scalars(
            select(RegistryGrid).where(RegistryGrid.community_id == community).order_by(RegistryGrid.id)
        )
    ]


@router.get(
    "/communities/{community}/grids",
    response_model=list[GridOut],
    responses={404: problem("No such community in your jurisdiction")},
)
def list_grids(community: PathId, resources: ResourcesDep, user: CurrentUser) -> list[GridOut]:
    """A community's grids with their buildings and outlines (the grids you may see)."""
    with Session(resources.db) as session:
        if session.get(RegistryCommunity, community) is None or not sees_area(
            user, resources.policy, community
        ):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no community {community!r}")
        grids = _grids_out(session, community)
    return [g for g in grids if sees_area(user, resources.policy, community, g.id)]


@router.post(
    "/communities/{community}/grids", status_code=201, response_model=GridOut, responses=WRITE_ERRORS
)
def add_grid(community: PathId, body: GridIn, resources: ResourcesDep, user: CurrentUser) -> GridOut:
    """A new grid of a community, optionally with its outline."""
    _may_manage(user, resources, community)
    row = _write(resources, lambda s: editing.add_grid(s, community, body.model_dump()))
    return GridOut(community=community, id=row.id, name=row.name, polygon=row.polygon, buildings=[])


@router.post(
    "/communities/{community}/grids/{grid}/buildings",
    status_code=201,
    response_model=BuildingOut,
    responses=WRITE_ERRORS,
)
def add_building(
    community: PathId, grid: PathId, body: BuildingIn, resources: ResourcesDep, user: CurrentUser
) -> BuildingOut:
    """A new building of a grid, optionally with its outline."""
    _may_manage(user, resources, community)
    row = _write(resources, lambda s: editing.add_building(s, community, grid, body.model_dump()))
    return BuildingOut(id=row.id, name=row.name, polygon=row.polygon)


@router.post("/gateways", status_code=201, response_model=RegisteredGateway, responses=WRITE_ERRORS)
def add_gateway(body: GatewayIn, resources: ResourcesDep, user: CurrentUser) -> RegisteredGateway:
    """Register a gateway of a community; its id is unique in the district (it is the box's account)."""
    _may_manage(user, resources, body.community)
    row: RegistryGateway = _write(
        resources, lambda s: editing.add_gateway(s, body.community, body.model_dump(exclude={"community"}))
    )
    return RegisteredGateway(community=row.community_id, id=row.id, name=row.name, created_at=row.created_at)


@router.post("/devices", status_code=201, response_model=RegisteredDevice, responses=WRITE_ERRORS)
def add_device(body: DeviceIn, resources: ResourcesDep, user: CurrentUser) -> RegisteredDevice:
    """Register a device; ingest stores its readings and the rules of its type judge them within seconds."""
    _may_manage(user, resources, body.community)
    fields = body.model_dump(exclude={"community", "gateway"}, exclude_none=True)
    row = _write(
        resources,
        lambda s: editing.add_device(s, body.community, body.gateway, fields, _known_types(resources)),
    )
    return _device_out(row)


@router.get(
    "/communities/{community}/devices/{device}",
    response_model=RegisteredDevice,
    responses={404: problem("No such device in your jurisdiction")},
)
def get_device(
    community: PathId, device: str, resources: ResourcesDep, user: CurrentUser
) -> RegisteredDevice:
    """A device as the registry holds it (its state, place and coordinates)."""
    with Session(resources.db) as session:
        row = session.get(RegistryDevice, (community, device))
    if row is None or not sees_area(user, resources.policy, community, row.grid_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r} in community {community!r}")
    return _device_out(row)


@router.patch(
    "/communities/{community}/devices/{device}", response_model=RegisteredDevice, responses=WRITE_ERRORS
)
def change_device(
    community: PathId, device: str, body: DeviceChange, resources: ResourcesDep, user: CurrentUser
) -> RegisteredDevice:
    """Edit, move to another grid or gateway, put in maintenance (stored, no cases) or retire a device."""
    _may_manage(user, resources, community)
    change = body.model_dump(exclude_unset=True)
    row = _write(
        resources,
        lambda s: editing.change_device(s, community, device, change, _known_types(resources)),
    )
    return _device_out(row)
