"""The edge agent on a real gateway: sources → spool → MQTT, with config replaceable at run time.

``yiwang edge run --config config/gateways/<gateway>.yaml``. One asyncio task per source (one per bus,
so each bus has one master). A bus task only polls, decodes and hands its batch over
(:mod:`edge.handoff`); one publishing thread owns every publisher call — spool append, encoding,
publish, pump, retained state — so SQLite and MQTT never stand between two requests on a bus.
Publishing is at-least-once through the gateway's spool.
The retained ``config`` topic may carry a new device set: it is validated completely — schema,
profiles, sources constructed — before anything is stopped; an invalid one is rejected with its
reason (a ``config.rejected`` event) and the running set keeps running. A set is applied only when its
hash differs from the one running, so the retained message redelivered on every reconnect is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contract.catalog import load_model
from contract.errors import ContractError
from contract.messages import ConfigMessage, ConfigRefusal, DeviceEntry, Event, decode_message
from contract.profiles import Scalar, SensorTypeProfile
from contract.topics import TopicKind
from edge.gateway_config import DeviceSet, GatewayConfig
from edge.handoff import Handoff
from edge.metrics import EdgeMetrics
from edge.publisher import AGENT_VERSION, GatewayPublisher, MqttOptions
from edge.sources.base import ConfigError, Source, SourceBatch, SourceFactory
from edge.sources.build import Built, LoadedProfile, build_sources, load_profiles
from edge.sources.registry import load_sources
from edge.spool import Spool, SpoolFullError
from edge.systemd_notify import Watchdog, notify
from edge.upgrade.desired import DesiredVersionFollower
from edge.upgrade.launch import UpgradeEnv, launch_upgrade

if TYPE_CHECKING:
    from edge.camera.runtime import CameraRuntime

log = logging.getLogger(__name__)

CONFIG_APPLIED = "config.applied"
CONFIG_REJECTED = "config.rejected"
# Batches waiting for the publishing thread: half a minute of a 30-device bus polled every second,
# about a megabyte. Beyond that the bus tasks wait for it (counted), so a stuck spool slows polling
# down instead of filling RAM.
HANDOFF_CAPACITY = 1024
# The watchdog is petted only while the publishing thread is alive and this recent.
PUBLISHER_STALL_S = 30.0


def describe(err: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors()[:5]
    ]
    return "; ".join(parts)


def remote_device_set(config: Mapping[str, Any], local: DeviceSet) -> DeviceSet:
    """A remote config's device set. It replaces the buses; the modem only when it names one: the
    registry does not manage modems, so a config without the key keeps the gateway file's."""
    body = {key: value for key, value in config.items() if key != SHIPPED_TYPES}
    if "modem" not in body and local.modem is not None:
        body["modem"] = local.modem.model_dump()
    return DeviceSet.model_validate(body)


SHIPPED_TYPES = "sensor_types"


def shipped_profiles(config: Mapping[str, Any], config_hash: str) -> dict[str, LoadedProfile]:
    """The sensor types a remote config carries (``registry.desired``), by id: a type added while the
    platform runs needs no profile file on the gateway. Each is validated as a file would be; a bad
    one refuses the whole config (ConfigError naming the type and field)."""
    shipped = config.get(SHIPPED_TYPES) or {}
    if not isinstance(shipped, Mapping):
        raise ConfigError(f"{SHIPPED_TYPES}: expected a mapping of type id to profile")
    profiles = {}
    for type_id, document in shipped.items():
        try:
            profile = SensorTypeProfile.model_validate(document)
        except ValidationError as err:
            raise ConfigError(f"{SHIPPED_TYPES}.{type_id}: {describe(err)}") from err
        if profile.id != type_id:
            raise ConfigError(f"{SHIPPED_TYPES}.{type_id}: the profile inside is {profile.id}")
        profiles[type_id] = LoadedProfile(profile, f"config {config_hash[:12]}")
    return profiles


def load_gateway_config(path: Path) -> GatewayConfig:
    """The local gateway file; ContractError naming the file and field when it is wrong."""
    return load_model(GatewayConfig, path)


class EdgeAgent:
    def __init__(
        self,
        config: GatewayConfig,
        profiles: Mapping[str, LoadedProfile],
        factories: Mapping[str, SourceFactory],
        publisher: GatewayPublisher,
        extra_devices: Sequence[DeviceEntry] = (),
        upgrades: DesiredVersionFollower | None = None,
    ) -> None:
        self.config = config
        self.extra_devices = list(extra_devices)  # e.g. the cameras analysed beside the sources
        self.file_profiles = profiles  # the gateway's own sensor-types/ files
        self.profiles = profiles  # those and the ones the running remote config shipped
        self.factories = factories
        self.publisher = publisher
        self.upgrades = upgrades  # follows the retained desired version (edge.upgrade.desired)
        self.built = build_sources(config.device_set(), profiles, factories)
        self.applied_hash: str | None = None
        self.refusal: ConfigRefusal | None = None
        self.refused = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[bytes] | None = None
        self._next_state = 0.0
        self.handoff = Handoff(f"publish-{config.gateway}", HANDOFF_CAPACITY, tick=self._tick, tick_s=0.25)

    def devices(self, built: Built | None = None) -> list[DeviceEntry]:
        built = built or self.built
        entries = [d for s in built.sources for d in s.devices()]
        return entries + (list(built.modem.devices()) if built.modem else []) + self.extra_devices

    async def run(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)
        self._inbox = inbox

        def offer(payload: bytes) -> None:  # on paho's thread
            loop.call_soon_threadsafe(self._enqueue, inbox, payload)

        self.publisher.on_config(offer)
        if self.upgrades is not None:
            self.publisher.on_desired_version(self.upgrades.offer)
        self.publisher.set_devices(self.devices())  # before the publishing thread: no race
        self.publisher.start()
        self._next_state = time.monotonic() + self.config.state_interval_s
        self.handoff.start()
        self._start()
        watchdog = Watchdog()
        notify("READY=1")
        try:
            while not stop.is_set():
                if self.handoff.alive(PUBLISHER_STALL_S):
                    watchdog.pet()
                try:
                    payload = await asyncio.wait_for(inbox.get(), timeout=0.25)
                except TimeoutError:
                    payload = None
                if payload is not None:
                    await self.handle_config(payload)
        finally:
            await self._stop_sources()
            # Every batch handed over before the stop is spooled before the publisher stops.
            self.handoff.stop()

    def _tick(self) -> None:  # on the publishing thread
        if time.monotonic() >= self._next_state:
            self._next_state = time.monotonic() + self.config.state_interval_s
            self.publisher.publish_state()
        if self.upgrades is not None:
            self.upgrades.tick()
        self.publisher.pump()

    @staticmethod
    def _enqueue(inbox: asyncio.Queue[bytes], payload: bytes) -> None:
        if inbox.full():
            inbox.get_nowait()  # only the newest desired config matters
        inbox.put_nowait(payload)

    def _start(self) -> None:
        sources: list[Source] = list(self.built.sources)
        if self.built.modem is not None:
            sources.append(self.built.modem)
        self._tasks = [asyncio.create_task(self._drive(s), name=f"source-{s.name}") for s in sources]
        log.info(
            "gateway %s: %d source(s), %d device(s) running",
            self.config.gateway,
            len(sources),
            len(self.devices()),
        )

    async def _stop_sources(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for source in [*self.built.sources, *([self.built.modem] if self.built.modem else [])]:
            try:
                await source.aclose()
            except Exception:
                log.exception("gateway %s: source %s did not close cleanly", self.config.gateway, source.name)

    async def _drive(self, source: Source) -> None:
        while True:
            try:
                batch = await source.read()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A source bug must not take the other buses down; it gets a pause and another go.
                log.exception(
                    "gateway %s: source %s failed; retrying in 5s", self.config.gateway, source.name
                )
                await asyncio.sleep(5)
                continue
            if self.built.modem is not None and source is self.built.modem:
                # partial, not a closure: the job runs later, after this loop has moved on.
                await self.handoff.put(partial(self.publisher.set_modem_state, self.built.modem.state))
            if batch:
                await self.handoff.put(partial(self.publish, batch))

    def publish(self, batch: SourceBatch) -> None:
        """Spool and publish one batch; runs on the publishing thread (or before it starts)."""
        try:
            # Events first: when the spool is nearly full, an unavailable device outranks routine data.
            if batch.events:
                self.publisher.publish_events(batch.events)
            if batch.readings:
                self.publisher.publish_readings(batch.readings)
        except SpoolFullError as err:
            self.refused += 1
            if self.refused % 100 == 1:
                log.warning("gateway %s: %s (%d refusals so far)", self.config.gateway, err, self.refused)

    async def handle_config(self, payload: bytes) -> bool:
        """Apply a remote device set if valid and new; report the outcome as an event. True if applied."""
        config_hash = ""
        try:
            message = decode_message(TopicKind.CONFIG, payload)
            if not isinstance(message, ConfigMessage):
                raise ContractError("not a config message")
            config_hash = message.hash
            if config_hash == self.applied_hash:
                log.debug("gateway %s: config %s already running", self.config.gateway, config_hash)
                return False
            try:
                device_set = remote_device_set(message.config, self.config.device_set())
            except ValidationError as err:
                raise ConfigError(describe(err)) from err
            profiles = {**self.file_profiles, **shipped_profiles(message.config, config_hash)}
            built = build_sources(device_set, profiles, self.factories)
        except (ContractError, ConfigError) as err:
            log.warning("gateway %s: config %s rejected: %s", self.config.gateway, config_hash or "?", err)
            await self._report(CONFIG_REJECTED, {"hash": config_hash, "reason": str(err)[:256]})
            self.refusal = ConfigRefusal(hash=config_hash or None, reason=str(err)[:256])
            await self._report_config_state()
            return False
        await self._stop_sources()
        self.built = built
        self.profiles = profiles
        self.applied_hash = config_hash
        self._start()
        devices = self.devices()
        await self.handoff.put(partial(self.publisher.set_devices, devices))
        log.info("gateway %s: config %s applied", self.config.gateway, config_hash)
        await self._report(CONFIG_APPLIED, {"hash": config_hash, "devices": len(devices)})
        self.refusal = None  # an older refusal no longer says anything about what runs
        await self._report_config_state()
        return True

    async def _report_config_state(self) -> None:
        """The outcome in the retained state too: the registry compares it with what it wants."""
        await self.handoff.put(partial(self.publisher.set_config_state, self.applied_hash, self.refusal))

    async def _report(self, kind: str, attrs: dict[str, Scalar]) -> None:
        event = Event(
            device=self.config.gateway,
            ts=time.time_ns() // 1_000_000,
            id=uuid.uuid4(),
            kind=kind,
            phase="instant",
            attrs=attrs,
        )
        await self.handoff.put(partial(self.publish, SourceBatch(events=[event])))


def mqtt_options(config: GatewayConfig) -> MqttOptions:
    m = config.mqtt
    try:
        password = m.password()
    except OSError as err:
        raise ConfigError(f"gateway {config.gateway}: mqtt.password_file: {err}") from err
    return MqttOptions(
        host=m.host,
        port=m.port,
        username=m.username,
        password=password.get_secret_value() if password else None,
        max_inflight=m.max_inflight,
        max_queued=m.max_queued,
        reconnect_max_s=m.reconnect_max_s,
        max_readings_per_message=config.spool.max_readings_per_message,
        drain_per_s=config.spool.drain_per_s,
        tls_ca=str(m.tls_ca) if m.tls_ca else None,
        tls_cert=str(m.tls_cert) if m.tls_cert else None,
        tls_key=str(m.tls_key) if m.tls_key else None,
    )


def open_spool(config: GatewayConfig) -> Spool:
    return Spool(
        config.spool.dir / config.community / f"{config.gateway}.sqlite3",
        max_bytes=config.spool.max_bytes,
        max_age_s=config.spool.max_age_s,
        max_items=config.spool.max_readings_per_message,
        sync_interval_s=config.spool.sync_interval_s,
    )


def start_cameras(
    config: GatewayConfig, options: MqttOptions, publisher: GatewayPublisher
) -> CameraRuntime | None:
    """The gateway's cameras, publishing through the agent's own publisher (one client, one seq)."""
    if config.cameras is None:
        return None
    from edge.camera.config import load_config  # OpenCV only on gateways that have cameras
    from edge.camera.runtime import CameraRuntime

    cameras = load_config(config.cameras)
    if (cameras.community, cameras.gateway) != (config.community, config.gateway):
        raise ConfigError(
            f"{config.cameras}: cameras of {cameras.community}/{cameras.gateway}, not this gateway"
        )
    runtime = CameraRuntime(cameras, options, publisher=publisher)
    publisher.set_camera_health(runtime.health)
    runtime.start()
    return runtime


def upgrades(publisher: GatewayPublisher) -> DesiredVersionFollower | None:
    """The desired-version follower when this agent runs from an upgradable prefix (docs/upgrades.md)."""
    env = UpgradeEnv.from_environ()
    if env is None:
        return None
    return DesiredVersionFollower(
        env.prefix, AGENT_VERSION, partial(launch_upgrade, env), publisher.set_upgrade_state
    )


def run_agent(config_path: Path, stop: threading.Event) -> None:
    """Load, validate (raising ContractError/ConfigError before touching any port) and run until stop.

    Under systemd (``edge/systemd/yiwang-edge.service``) it reports READY once running and pets the
    watchdog from its main loop; SIGTERM sets ``stop``: sources stop, the publisher sends a retained
    planned-stop state (``reason: stopped``) and disconnects; a crash sends a plain offline state.
    Nothing is deleted that the broker did not acknowledge.
    """
    config = load_gateway_config(config_path)
    profiles = load_profiles(config.config_dir)
    factories = load_sources()
    build_sources(config.device_set(), profiles, factories)  # fail before opening the spool
    options = mqtt_options(config)
    metrics = EdgeMetrics()
    spool = open_spool(config)
    try:
        publisher = GatewayPublisher(config.community, config.gateway, spool, [], options)
        metrics.add(publisher)
        if config.metrics.port is not None:
            try:
                metrics.serve(config.metrics.host, config.metrics.port)
            except OSError as err:
                where = f"{config.metrics.host}:{config.metrics.port}"
                raise ConfigError(f"gateway {config.gateway}: metrics port {where}: {err}") from err
        cameras = start_cameras(config, options, publisher)
        agent = EdgeAgent(
            config, profiles, factories, publisher, cameras.devices() if cameras else (), upgrades(publisher)
        )
        metrics.add_handoff(agent.handoff)
        try:
            asyncio.run(agent.run(stop))
        finally:
            notify("STOPPING=1")
            if cameras is not None:
                cameras.stop()
            publisher.stop(planned=stop.is_set())
    finally:
        metrics.close()
        spool.close()
