"""Gateway config + sensor-type profiles → ready-to-run sources, validated completely, no I/O.

This is the one place a device set is checked against the profiles and the registered sources, so
a local file and a remote ``config`` message are judged the same way, before anything is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contract.catalog import load_model
from contract.errors import ContractError
from contract.profiles import SensorTypeProfile
from edge.gateway_config import DeviceSet
from edge.sources.base import BoundDevice, ConfigError, Source, SourceFactory
from edge.sources.modem import ModemSource


@dataclass(frozen=True, slots=True)
class LoadedProfile:
    profile: SensorTypeProfile
    path: str


def load_profiles(config_dir: Path) -> dict[str, LoadedProfile]:
    """Every ``sensor-types/*.yaml``; a bad file raises ContractError naming the file and field."""
    out: dict[str, LoadedProfile] = {}
    for path in sorted((config_dir / "sensor-types").glob("*.yaml")):
        profile = load_model(SensorTypeProfile, path)
        if profile.id in out:
            raise ContractError(f"{path}: profile {profile.id} is already defined in {out[profile.id].path}")
        out[profile.id] = LoadedProfile(profile, str(path))
    return out


@dataclass(frozen=True, slots=True)
class Built:
    sources: list[Source]
    modem: ModemSource | None


def build_sources(
    device_set: DeviceSet, profiles: Mapping[str, LoadedProfile], factories: Mapping[str, SourceFactory]
) -> Built:
    """Construct every source (validation only); ConfigError naming the bus, device and profile."""
    sources: list[Source] = []
    for bus in device_set.buses:
        factory = factories.get(bus.kind)
        if factory is None:
            raise ConfigError(
                f"bus {bus.id}: unknown source kind {bus.kind!r} (known: {', '.join(sorted(factories))})"
            )
        bound = []
        for dev in bus.devices:
            loaded = profiles.get(dev.type)
            if loaded is None:
                raise ConfigError(
                    f"bus {bus.id} device {dev.id}: unknown sensor type {dev.type!r} "
                    f"(known: {', '.join(sorted(profiles))})"
                )
            bound.append(BoundDevice(dev, loaded.profile, loaded.path))
        try:
            sources.append(factory(bus, bound))
        except ConfigError:
            raise
        except (ValueError, TypeError) as err:  # a plugin's own validation, reported the same way
            raise ConfigError(f"bus {bus.id}: {err}") from err
    modem = None
    if device_set.modem is not None:
        loaded = profiles.get(device_set.modem.type)
        if loaded is None:
            raise ConfigError(
                f"modem {device_set.modem.device}: unknown sensor type {device_set.modem.type!r}"
            )
        modem = ModemSource(device_set.modem, loaded.profile)
    return Built(sources, modem)
