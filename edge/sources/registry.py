"""Which source drives a bus ``kind``: the built-ins plus plugins from the ``yiwang.sources`` entry point.

An integrator's protocol is one module and one line in their package's ``pyproject.toml``::

    [project.entry-points."yiwang.sources"]
    knx_ip = "yiwang_knx.source:KnxSource"

A plugin is accepted only when it imports, declares ``api_version`` equal to
:data:`~edge.sources.base.SOURCE_API_VERSION`, does not reuse a built-in's name and passes the load
contract: its ``contract_sample()`` gives a bus and devices, and the factory builds from them (no I/O)
an object satisfying :class:`~edge.sources.base.Source` that lists exactly those devices.

A refused plugin never stops the others: each refusal is logged with its reason, and the plugin's
name stays registered as a factory that raises :class:`ConfigError` with that reason, so a gateway
file or remote config that uses it is refused naming what to fix, while every other bus runs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar, NoReturn

from edge.gateway_config import BusConfig
from edge.sources.base import (
    CONTRACT_SAMPLE,
    SOURCE_API_VERSION,
    BoundDevice,
    ConfigError,
    Source,
    SourceFactory,
)
from edge.sources.modbus import ModbusBus, ModbusTcpBus
from edge.sources.serial_line import SerialLineSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "yiwang.sources"
OWN_DISTRIBUTION = "yiwang"

BUILTIN: Mapping[str, SourceFactory] = {
    "modbus_rtu": ModbusBus,
    "modbus_tcp": ModbusTcpBus,
    "serial_line": SerialLineSource,
}

_SOURCE_MEMBERS = ("api_version", "name", "devices", "read", "aclose")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A plugin the agent will not run, and why, in words an integrator can act on."""

    kind: str
    plugin: str
    reason: str

    def __str__(self) -> str:
        return f"source plugin {self.plugin} refused: {self.reason}"


class RefusedSource:
    """Stands in for a refused plugin: building a bus of its kind raises the refusal."""

    api_version: ClassVar[int] = SOURCE_API_VERSION

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal

    def __call__(self, bus: BusConfig, devices: Sequence[BoundDevice]) -> NoReturn:
        raise ConfigError(f"bus {bus.id}: {self.refusal}")


@dataclass(frozen=True, slots=True)
class Discovery:
    """What :func:`discover_sources` found: the factories by kind, and the plugins it refused."""

    factories: dict[str, SourceFactory]
    refused: list[Refusal] = field(default_factory=list)


def check_factory(kind: str, factory: object) -> SourceFactory:
    """The factory if it speaks this agent's Source API and is callable; ConfigError naming it if not."""
    version = getattr(factory, "api_version", None)
    if version != SOURCE_API_VERSION:
        raise ConfigError(
            f"source {kind!r} ({_describe(factory)}) speaks Source API version {version}, "
            f"this agent speaks {SOURCE_API_VERSION}"
        )
    if not callable(factory):
        raise ConfigError(f"source {kind!r} ({_describe(factory)}) is not callable")
    return factory


def check_contract(kind: str, factory: SourceFactory) -> None:
    """Build the plugin's own sample (no I/O) and check the result is a Source; ConfigError if not."""
    sample = getattr(factory, CONTRACT_SAMPLE, None)
    if not callable(sample):
        raise ConfigError(
            f"source {kind!r} has no {CONTRACT_SAMPLE}(): add one returning (BusConfig, [BoundDevice, ...]) "
            "so the agent can check the plugin before it runs"
        )
    try:
        bus, devices = sample()
        source = factory(bus, devices)
    except Exception as err:  # whatever a foreign factory raises is its refusal reason
        raise ConfigError(
            f"source {kind!r}: building its {CONTRACT_SAMPLE}() failed: {type(err).__name__}: {err}"
        ) from err
    missing = [m for m in _SOURCE_MEMBERS if not hasattr(source, m)]
    if missing or not isinstance(source, Source):
        raise ConfigError(
            f"source {kind!r} built a {type(source).__name__}, not a Source: missing "
            f"{', '.join(missing)} (see edge.sources.base.Source)"
        )
    for member in ("read", "aclose"):
        if not inspect.iscoroutinefunction(getattr(source, member)):
            raise ConfigError(f"source {kind!r}: {member}() must be async (a coroutine function)")
    if source.api_version != SOURCE_API_VERSION:
        raise ConfigError(f"source {kind!r}: the built source declares api_version {source.api_version}")
    listed = [(d.device, d.type) for d in source.devices()]
    wanted = [(d.config.id, d.profile.id) for d in devices]
    if listed != wanted:
        raise ConfigError(f"source {kind!r}: devices() lists {listed}, its sample has {wanted}")


def _is_own(ep: EntryPoint) -> bool:
    """Our own distribution registers the built-ins under their names; those are not collisions."""
    dist = ep.dist
    return dist is not None and dist.name == OWN_DISTRIBUTION and ep.value == _builtin_path(ep.name)


def _builtin_path(kind: str) -> str:
    return _describe(BUILTIN[kind])


def _describe(factory: object) -> str:
    """``module:Name``, as an entry point spells it."""
    name = getattr(factory, "__qualname__", type(factory).__qualname__)
    return f"{getattr(factory, '__module__', '?')}:{name}"


def _load_plugin(ep: EntryPoint) -> SourceFactory:
    try:
        factory = ep.load()
    except Exception as err:  # a plugin that raises at import is refused with its error, not a crash
        raise ConfigError(f"source {ep.name!r} failed to import: {type(err).__name__}: {err}") from err
    factory = check_factory(ep.name, factory)
    check_contract(ep.name, factory)
    return factory


def discover_sources(plugin_entry_points: Iterable[EntryPoint] | None = None) -> Discovery:
    """Built-ins, then every installed plugin that passes its checks; refusals with their reasons."""
    found = list(
        entry_points(group=ENTRY_POINT_GROUP) if plugin_entry_points is None else plugin_entry_points
    )
    factories: dict[str, SourceFactory] = dict(BUILTIN)
    refused: list[Refusal] = []
    by_name: dict[str, list[EntryPoint]] = {}
    for ep in found:
        if ep.name in BUILTIN and _is_own(ep):
            continue
        by_name.setdefault(ep.name, []).append(ep)
    for name, eps in sorted(by_name.items()):
        if name in BUILTIN:
            # The built-in keeps its name; the plugin is refused, not the bus that uses the name.
            reason = f"source {name!r} is a built-in; register the plugin under another name"
            refused += [Refusal(name, ep.value, reason) for ep in eps]
            continue
        if len(eps) > 1:
            # Which one would win depends on install order: refuse both rather than guess.
            others = ", ".join(ep.value for ep in eps)
            refusal = Refusal(name, others, f"source {name!r} is registered twice; uninstall all but one")
        else:
            try:
                factories[name] = _load_plugin(eps[0])
                log.info("source plugin %s loaded from %s", name, eps[0].value)
                continue
            except ConfigError as err:
                refusal = Refusal(name, eps[0].value, str(err))
        refused.append(refusal)
        factories[name] = RefusedSource(refusal)
    for refusal in refused:
        log.warning("%s", refusal)
    return Discovery(factories, refused)


def load_sources(*, plugins: bool = True) -> dict[str, SourceFactory]:
    """Factories by bus kind: built-ins, accepted plugins, and refused plugins that raise their reason."""
    if not plugins:
        return dict(BUILTIN)
    return discover_sources().factories
