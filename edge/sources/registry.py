"""Which source drives a bus ``kind``: the built-ins plus plugins from the ``yiwang.sources`` entry point.

An integrator's protocol is one module and one line in their package's ``pyproject.toml``::

    [project.entry-points."yiwang.sources"]
    knx_ip = "yiwang_knx.source:KnxSource"

A plugin must declare ``api_version`` equal to :data:`SOURCE_API_VERSION`; a mismatch or an entry
point that does not load is refused with a message naming the plugin, never half-run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points

from edge.sources.base import SOURCE_API_VERSION, ConfigError, SourceFactory
from edge.sources.modbus import ModbusBus, ModbusTcpBus
from edge.sources.serial_line import SerialLineSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "yiwang.sources"

BUILTIN: Mapping[str, SourceFactory] = {
    "modbus_rtu": ModbusBus,
    "modbus_tcp": ModbusTcpBus,
    "serial_line": SerialLineSource,
}


def check_factory(kind: str, factory: object) -> SourceFactory:
    version = getattr(factory, "api_version", None)
    if version != SOURCE_API_VERSION:
        raise ConfigError(
            f"source {kind!r} ({factory!r}) speaks Source API version {version}, "
            f"this agent speaks {SOURCE_API_VERSION}"
        )
    if not callable(factory):
        raise ConfigError(f"source {kind!r} ({factory!r}) is not callable")
    return factory


def load_sources(*, plugins: bool = True) -> dict[str, SourceFactory]:
    """Built-ins, then installed plugins; a plugin may not silently replace a built-in."""
    sources: dict[str, SourceFactory] = dict(BUILTIN)
    if not plugins:
        return sources
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN:
            # Our own distribution registers the built-ins under the same names; those are fine.
            if ep.value.split(":")[0].startswith("edge.sources."):
                continue
            raise ConfigError(f"plugin {ep.value} tries to replace built-in source {ep.name!r}")
        try:
            factory = ep.load()
        except Exception as err:  # a broken plugin is a config error with its name, not a crash
            raise ConfigError(f"source plugin {ep.name!r} ({ep.value}) failed to load: {err}") from err
        sources[ep.name] = check_factory(ep.name, factory)
        log.info("source plugin %s loaded from %s", ep.name, ep.value)
    return sources
