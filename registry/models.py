"""The registry's tables: the district's towns, communities, grids, buildings, gateways and devices.

Identity is (community, id) for everything below a community: two communities may both have a
``smoke-01`` or a ``g-north``. Retired devices stay (their readings and cases keep their names); a
device is never deleted, only retired. ``registry_version`` is one row whose number goes up with every
change, so a service knows with one cheap query whether its copy of the registry is current; each
community's ``revision`` says which communities that change touched.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class RegistryTown(Base):
    __tablename__ = "registry_towns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    district: Mapped[str] = mapped_column(String(128), default="")


class RegistryCommunity(Base):
    __tablename__ = "registry_communities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    town_id: Mapped[str] = mapped_column(ForeignKey("registry_towns.id"), index=True)
    # The registry version of the community's last change (its own rows, or its town's): a service
    # reloads only the communities whose revision moved since it last read them.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RegistryGrid(Base):
    __tablename__ = "registry_grids"

    community_id: Mapped[str] = mapped_column(ForeignKey("registry_communities.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    polygon: Mapped[Any | None] = mapped_column(JSON, nullable=True)  # GeoJSON Polygon coordinates


class RegistryBuilding(Base):
    __tablename__ = "registry_buildings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["community_id", "grid_id"], ["registry_grids.community_id", "registry_grids.id"]
        ),
    )

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grid_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    polygon: Mapped[Any | None] = mapped_column(JSON, nullable=True)


class RegistryGateway(Base):
    __tablename__ = "registry_gateways"

    community_id: Mapped[str] = mapped_column(ForeignKey("registry_communities.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]


class RegistryDevice(Base):
    __tablename__ = "registry_devices"
    __table_args__ = (
        Index("ix_registry_devices_grid", "community_id", "grid_id"),
        Index("ix_registry_devices_gateway", "community_id", "gateway_id"),
    )

    community_id: Mapped[str] = mapped_column(ForeignKey("registry_communities.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(96))
    gateway_id: Mapped[str] = mapped_column(String(64))
    # Gateway, grid and building are checked by the registry, not by foreign keys: a retired device
    # keeps the names it had even after its gateway is replaced or its grid redrawn.
    grid_id: Mapped[str] = mapped_column(String(64))
    building_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    installed: Mapped[date | None] = mapped_column(Date, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="active")
    updated_at: Mapped[datetime]
    # Where the gateway reaches it: a bus of its gateway and its address there. A device without a bus
    # (simulated, a camera, a third party's box) stays registry-only and is in no gateway config.
    bus_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    unit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    poll_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # max_interval_s, deadband


class RegistryBus(Base):
    """One wire (or TCP link) of a gateway with one master: RS-485 Modbus, Modbus TCP, a serial line."""

    __tablename__ = "registry_buses"
    __table_args__ = (
        ForeignKeyConstraint(
            ["community_id", "gateway_id"], ["registry_gateways.community_id", "registry_gateways.id"]
        ),
    )

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    port: Mapped[str | None] = mapped_column(String(200), nullable=True)
    host: Mapped[str | None] = mapped_column(String(253), nullable=True)
    tcp_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    baudrate: Mapped[int] = mapped_column(Integer, default=9600)
    parity: Mapped[str] = mapped_column(String(1), default="N")
    bytesize: Mapped[int] = mapped_column(Integer, default=8)
    stopbits: Mapped[int] = mapped_column(Integer, default=1)
    timeout_s: Mapped[float] = mapped_column(Float, default=0.5)
    retries: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class RegistryVersion(Base):
    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime]


TABLES: tuple[Table, ...] = tuple(
    cast(Table, m.__table__)
    for m in (
        RegistryTown,
        RegistryCommunity,
        RegistryGrid,
        RegistryBuilding,
        RegistryGateway,
        RegistryDevice,
        RegistryBus,
        RegistryVersion,
    )
)
