"""Each gateway's desired configuration as the registry says it, its version, and drift from what runs.

A gateway is *managed* by the registry once it has a bus there: its desired config is the device set
of a gateway file (``buses`` with their devices, names as in ``edge.gateway_config.DeviceSet``) made
of its buses and of their active and maintenance devices; planned and retired devices are left out,
as are buses with no device left (a gateway refuses an empty bus). A gateway without a bus in the
registry is configured by its own file and gets no desired config.

The config also carries, under ``sensor_types``, the stored profile of every type its devices use: a
type added while the platform runs (``POST /api/v1/sensor-types``, ``yiwang types add``) reaches the
gateways that need it with the device set, so no profile file has to be copied to a gateway first.

The version is the SHA-256 of the config's canonical JSON (sorted keys, no spaces), so the same rows
always give the same hash and a gateway that already runs it changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from contract.catalog import DeviceState
from registry.definition_models import DefinitionProfile
from registry.models import RegistryBus, RegistryDevice

RENDERED_STATES = frozenset({DeviceState.ACTIVE.value, DeviceState.MAINTENANCE.value})
BUS_COLUMNS = ("kind", "port", "host", "tcp_port", "baudrate", "parity", "bytesize", "stopbits")
BUS_TIMING = ("timeout_s", "retries")

GatewayKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class DesiredConfig:
    community: str
    gateway: str
    config: dict[str, Any]
    hash: str

    def payload(self) -> bytes:
        """The retained ``config`` message (``contract.messages.ConfigMessage``)."""
        return json.dumps({"hash": self.hash, "config": self.config}, sort_keys=True).encode()


def config_hash(config: Mapping[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bus_config(bus: RegistryBus, devices: list[RegistryDevice]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"id": bus.id}
    for column in (*BUS_COLUMNS, *BUS_TIMING):
        value = getattr(bus, column)
        if value is not None:
            rendered[column] = value
    rendered["devices"] = [_device_config(d) for d in sorted(devices, key=lambda d: d.id)]
    return rendered


def _device_config(device: RegistryDevice) -> dict[str, Any]:
    rendered: dict[str, Any] = {"id": device.id, "type": device.type}
    if device.unit is not None:
        rendered["unit"] = device.unit
    if device.poll_s is not None:
        rendered["poll_s"] = device.poll_s
    rendered.update(device.options or {})
    return rendered


def render_all(session: Session, communities: list[str] | None = None) -> dict[GatewayKey, DesiredConfig]:
    """The desired config of every managed gateway (of some communities), by (community, gateway)."""
    bus_query = select(RegistryBus)
    device_query = select(RegistryDevice).where(
        RegistryDevice.bus_id.is_not(None), RegistryDevice.state.in_(RENDERED_STATES)
    )
    if communities is not None:
        bus_query = bus_query.where(RegistryBus.community_id.in_(communities))
        device_query = device_query.where(RegistryDevice.community_id.in_(communities))
    on_bus: dict[tuple[str, str, str], list[RegistryDevice]] = defaultdict(list)
    for device in session.scalars(device_query):
        assert device.bus_id is not None
        on_bus[(device.community_id, device.gateway_id, device.bus_id)].append(device)
    buses: dict[GatewayKey, list[dict[str, Any]]] = defaultdict(list)
    for bus in session.scalars(bus_query.order_by(RegistryBus.id)):
        key = (bus.community_id, bus.gateway_id)
        buses.setdefault(key, [])
        devices = on_bus.get((bus.community_id, bus.gateway_id, bus.id))
        if devices:
            buses[key].append(_bus_config(bus, devices))
    profiles = _stored_profiles(session)
    result = {}
    for (community, gateway), rendered in sorted(buses.items()):
        types = sorted({d["type"] for bus in rendered for d in bus["devices"]})
        config: dict[str, Any] = {"buses": rendered}
        if shipped := {t: profiles[t] for t in types if t in profiles}:
            config["sensor_types"] = shipped
        result[(community, gateway)] = DesiredConfig(community, gateway, config, config_hash(config))
    return result


def _stored_profiles(session: Session) -> dict[str, dict[str, Any]]:
    """Every stored profile's document by type id (``name@version``)."""
    rows = session.execute(
        select(DefinitionProfile.name, DefinitionProfile.version, DefinitionProfile.document)
    )
    return {f"{name}@{version}": document for name, version, document in rows}


def render(session: Session, community: str, gateway: str) -> DesiredConfig | None:
    """One gateway's desired config; None when the registry does not manage it (no bus)."""
    return render_all(session, [community]).get((community, gateway))


@dataclass(frozen=True, slots=True)
class ConfigDrift:
    """What the registry wants a gateway to run against what the gateway last said it runs."""

    desired: str | None  # None: the gateway is configured by its own file
    applied: str | None  # None: it never reported a registry config (or its state is not known)
    refused: str | None  # the hash it refused last, if any
    reason: str | None  # why

    @property
    def drift(self) -> bool:
        """The registry wants something the gateway does not say it runs."""
        return self.desired is not None and self.applied != self.desired

    @property
    def refusing(self) -> bool:
        """The gateway refused the very config the registry wants now: a person has to act."""
        return self.desired is not None and self.refused == self.desired


def config_drift(desired: DesiredConfig | None, state: Mapping[str, Any] | None) -> ConfigDrift:
    """``state``: the gateway's last retained state document (``alerts.fleet.GatewayStatus.state``)."""
    state = state or {}
    applied = state.get("config_applied")
    refusal = state.get("config_refused")
    refused = refusal.get("hash") if isinstance(refusal, Mapping) else None
    reason = refusal.get("reason") if isinstance(refusal, Mapping) else None
    return ConfigDrift(
        desired=desired.hash if desired else None,
        applied=applied if isinstance(applied, str) else None,
        refused=refused if isinstance(refused, str) else None,
        reason=reason if isinstance(reason, str) else None,
    )


def config_drifts(
    session: Session, states: Mapping[GatewayKey, Mapping[str, Any] | None]
) -> dict[GatewayKey, ConfigDrift]:
    """Drift of every gateway in ``states`` (by (community, gateway)), for the fleet page."""
    desired = render_all(session, sorted({c for c, _ in states}))
    return {key: config_drift(desired.get(key), state) for key, state in states.items()}


def fleet_config_drifts(
    db: Engine, states: Mapping[GatewayKey, Mapping[str, Any] | None]
) -> dict[GatewayKey, ConfigDrift]:
    """:func:`config_drifts` in a session of its own (the console's fleet page)."""
    with Session(db) as session:
        return config_drifts(session, states)
