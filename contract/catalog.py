"""The deployment catalog: communities, their grids, buildings, gateways and devices, plus profiles.

Loaded from ``config/communities/*.yaml`` and ``config/sensor-types/*.yaml``; every error names the
file and the field. Reading local config files is the only I/O here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.errors import ContractError
from contract.geo import Latitude, Longitude, PolygonCoordinates, gcj02_to_wgs84
from contract.ids import Id, SensorTypeRef
from contract.profiles import SensorTypeProfile

M = TypeVar("M", bound=BaseModel)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceState(StrEnum):
    """A device's lifecycle: only ``active`` devices open cases; ``retired`` ones are refused."""

    PLANNED = "planned"  # registered, not installed yet: readings are stored, no case opens
    ACTIVE = "active"
    MAINTENANCE = "maintenance"  # stored, alerts silenced with the reason, no case opens
    RETIRED = "retired"  # readings dead-lettered with reason "retired device"


class Building(_Config):
    id: Id
    name: str
    polygon: PolygonCoordinates | None = Field(
        default=None, description="GeoJSON Polygon coordinates, [longitude, latitude] in WGS-84."
    )


class Grid(_Config):
    id: Id
    name: str
    polygon: PolygonCoordinates | None = None
    buildings: list[Building] = Field(default_factory=list)


class Device(_Config):
    id: Id
    type: SensorTypeRef
    grid: Id
    building: Id | None = None
    location: str = Field(
        default="", max_length=200, description="Where it is mounted, for the people sent there."
    )
    lat: Latitude | None = None
    lon: Longitude | None = None
    datum: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="The datum lat/lon were read in; gcj02 (Chinese map services) is stored as WGS-84.",
    )
    installed: date | None = None
    state: DeviceState = DeviceState.ACTIVE

    @model_validator(mode="before")
    @classmethod
    def _to_wgs84(cls, data: Any) -> Any:
        """GCJ-02 input is converted before validation, so the model only ever holds WGS-84."""
        if isinstance(data, dict) and data.get("datum") == "gcj02":
            try:
                lat, lon = float(data["lat"]), float(data["lon"])
            except (KeyError, TypeError, ValueError):
                return data  # not a point: the field validators say what is wrong with it
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                wlat, wlon = gcj02_to_wgs84(lat, lon)
                data = {**data, "lat": round(wlat, 7), "lon": round(wlon, 7), "datum": "wgs84"}
        return data

    @model_validator(mode="after")
    def _point_is_whole(self) -> Device:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon come together: give both or neither")
        return self


class Gateway(_Config):
    id: Id
    name: str = ""
    devices: list[Device] = Field(default_factory=list)


class Community(_Config):
    id: Id
    name: str
    town: str = ""
    district: str = ""
    grids: list[Grid] = Field(min_length=1)
    gateways: list[Gateway] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> Community:
        buildings = {b.id: g.id for g in self.grids for b in g.buildings}
        grids = {g.id for g in self.grids}
        seen: set[str] = set()
        for gw in self.gateways:
            for dev in gw.devices:
                where = f"gateway {gw.id} device {dev.id}"
                if dev.id in seen:
                    raise ValueError(f"{where}: device id used twice in the community")
                seen.add(dev.id)
                if dev.grid not in grids:
                    raise ValueError(f"{where}: unknown grid {dev.grid!r}")
                if dev.building is not None and buildings.get(dev.building) != dev.grid:
                    raise ValueError(f"{where}: building {dev.building!r} is not in grid {dev.grid!r}")
        return self


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    community: Community
    gateway: Gateway
    device: Device
    profile: SensorTypeProfile


@dataclass(frozen=True, slots=True)
class _CommunityEntry:
    """One community's devices, looked up by gateway then id, and by id alone. A catalog made by
    :meth:`Catalog.replacing` shares the entries of the communities it did not replace."""

    community: Community
    by_gateway: dict[str, dict[str, DeviceInfo]]
    by_id: dict[str, DeviceInfo]


def _entry(community: Community, profiles: dict[str, SensorTypeProfile]) -> _CommunityEntry:
    by_gateway: dict[str, dict[str, DeviceInfo]] = {}
    by_id: dict[str, DeviceInfo] = {}
    for gateway in community.gateways:
        devices = by_gateway.setdefault(gateway.id, {})
        for device in gateway.devices:
            profile = profiles.get(device.type)
            if profile is None:
                raise ContractError(
                    f"{community.id}/{gateway.id}/{device.id}: unknown sensor type {device.type!r}"
                )
            devices[device.id] = by_id[device.id] = DeviceInfo(community, gateway, device, profile)
    return _CommunityEntry(community, by_gateway, by_id)


class Catalog:
    """Lookup of devices by (community, gateway, device) with their profiles.

    Immutable once made: a registry change makes a new catalog with :meth:`replacing`, which costs the
    communities it replaces, not the district.
    """

    def __init__(self, communities: list[Community], profiles: list[SensorTypeProfile]) -> None:
        self.profiles = {p.id: p for p in profiles}
        self._entries = {c.id: _entry(c, self.profiles) for c in communities}
        self.communities = {c.id: c for c in communities}

    @classmethod
    def _of(cls, entries: dict[str, _CommunityEntry], profiles: dict[str, SensorTypeProfile]) -> Catalog:
        catalog = cls.__new__(cls)
        catalog.profiles, catalog._entries = profiles, entries
        catalog.communities = {c: e.community for c, e in entries.items()}
        return catalog

    def replacing(self, communities: Iterable[Community], removed: Iterable[str] = ()) -> Catalog:
        """This catalog with ``communities`` added or put in place of their namesakes and ``removed``
        taken out; every other community (and the profiles) shared, not copied."""
        entries = dict(self._entries)
        for community_id in removed:
            entries.pop(community_id, None)
        for community in communities:
            entries[community.id] = _entry(community, self.profiles)
        return Catalog._of(entries, self.profiles)

    def changed_since(self, older: Catalog | None) -> set[str]:
        """The communities whose devices may differ from ``older``'s: added, removed or replaced (all of
        them when the profiles are not the same objects, or there is no older catalog)."""
        if older is None or older.profiles is not self.profiles:
            return set(self._entries) | (set(older._entries) if older is not None else set())
        mine, theirs = self._entries, older._entries
        return {c for c in mine.keys() | theirs.keys() if mine.get(c) is not theirs.get(c)}

    def device(self, community: str, gateway: str, device: str) -> DeviceInfo | None:
        entry = self._entries.get(community)
        devices = entry.by_gateway.get(gateway) if entry is not None else None
        return devices.get(device) if devices is not None else None

    def device_in(self, community: str, device: str) -> DeviceInfo | None:
        """A device by its identity: a device id is unique within its community, not across them."""
        entry = self._entries.get(community)
        return entry.by_id.get(device) if entry is not None else None

    def devices(self) -> Iterator[DeviceInfo]:
        return chain.from_iterable(e.by_id.values() for e in self._entries.values())

    def devices_of(self, community: str) -> Collection[DeviceInfo]:
        """One community's devices (empty for a community not in the catalog)."""
        entry = self._entries.get(community)
        return entry.by_id.values() if entry is not None else ()


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:  # e.g. saved as GBK: say so instead of a traceback
        raise ContractError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise ContractError(f"{path}: {err}") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ContractError(f"{path}: {err}") from err
    except RecursionError as err:  # PyYAML's constructor recurses once per nesting level
        raise ContractError(f"{path}: YAML nested too deeply") from err


def load_model(model: type[M], path: Path) -> M:
    """One YAML file validated as ``model``; errors name the file and the field."""
    try:
        return model.model_validate(_load_yaml(path))
    except ValidationError as err:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()[:5]
        )
        raise ContractError(f"{path}: {details}") from err


def load_sensor_types(config_dir: Path) -> list[SensorTypeProfile]:
    return [load_model(SensorTypeProfile, p) for p in sorted((config_dir / "sensor-types").glob("*.yaml"))]


def load_catalog(config_dir: Path) -> Catalog:
    communities = [load_model(Community, p) for p in sorted((config_dir / "communities").glob("*.yaml"))]
    return Catalog(communities, load_sensor_types(config_dir))
