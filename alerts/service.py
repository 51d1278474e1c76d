"""The alert service: evaluate rules on the live MQTT stream and turn firing alerts into cases.

Transitions are committed before the messages that caused them are acknowledged. The engine's
state (pending timers, windows, baselines) is checkpointed every few seconds and at a clean stop;
firing alerts and their cases are in the database at every commit. Workers scale out by community:
each takes the communities of ``YIWANG_ALERTS_COMMUNITIES``. The cases' own clocks (SLA, auto-check,
notifications) are not run here but by `yiwang cases` (``cases.service``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from alerts.background import BackgroundWriter
from alerts.checkpoint import encode_gently
from alerts.engine import AlertEngine, Transition
from alerts.fleet import record_devices, record_gateway, record_heard
from alerts.intake import CaseBook
from alerts.lifecycle import AlertState
from alerts.models import Alert
from alerts.pauses import Pauses, freeze_long_lived
from alerts.rules import Rule, config_definitions, load_rules, rules_of_files
from alerts.schema import create_schema
from alerts.silences import SilenceStore
from cases.policy import CasePolicy
from common.consumer import AckingConsumer, Inbound, retry_until_stopped
from common.db import make_engine
from common.heartbeat import HeartbeatThread
from common.settings import ServiceSettings
from contract import (
    ContractError,
    EventMessage,
    StateMessage,
    TelemetryMessage,
    Topic,
    TopicKind,
    decode_message,
    subscription,
)
from contract.catalog import Catalog
from registry import definitions as stored_definitions
from registry.live import LiveCatalog, open_live_catalog
from registry.live_definitions import Definitions, LiveDefinitions

log = logging.getLogger(__name__)
RETRYABLE = (SQLAlchemyError,)
TIMER_PERIOD_S = 0.1  # `for` timers and deadman: ~8 ms of engine time per tick at 1,000 devices
SILENCES_PERIOD_S = 1.0
DEVICES_RECORD_S = 15.0  # how fresh the devices' last-seen times are in the registry
# A batch is what arrived while the last one was handled (up to BATCH_MESSAGES): waiting for more
# only delays every reading in it (50 ms did, in the alerts bench), and a batch without transitions
# commits nothing, so small batches cost little.
BATCH_MESSAGES = 200
BATCH_WAIT_S = 0.0
# Series per piece of a checkpoint's snapshot, one piece per tick: ~5 ms of the stream's thread at the
# alerts bench's 6,420 series (the whole at once held it ~60 ms, ~190 ms on a loaded machine).
SNAPSHOT_PIECE = 500


class AlertSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    alerts_client_id: str = "yiwang-alerts"
    # NoDecode: the env value is a plain list (``a,b``, as the docs show), not JSON.
    alerts_communities: Annotated[list[str] | None, NoDecode] = None
    case_join_window_minutes: float = 60
    checkpoint_interval_s: float = 30.0

    @field_validator("alerts_communities", mode="before")
    @classmethod
    def _split_communities(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [c.strip() for c in value.split(",") if c.strip()] or None
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class AlertCounters:
    messages: int = 0
    ignored: int = 0
    transitions: int = 0
    pauses: Pauses = field(default_factory=Pauses)

    def snapshot(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "pauses"}, "pauses": self.pauses.snapshot()}


class AlertProcessor:
    def __init__(
        self,
        engine: AlertEngine,
        book: CaseBook,
        silences: SilenceStore,
        stop: threading.Event,
        *,
        partition: str,
        checkpoint_interval_s: float = 30.0,
        live: LiveCatalog | None = None,
    ) -> None:
        self._engine, self._book, self._silences, self._stop = engine, book, silences, stop
        self.live = live  # the registry: a change reaches the engine at the next tick
        if live is not None:
            live.on_change(self.offer_catalog)
        self._partition, self._checkpoint_interval_s = partition, checkpoint_interval_s
        self._last_devices_record = 0.0
        self._gateway_states: dict[tuple[str, str], StateMessage] = {}
        self._last_tick = self._last_checkpoint = self._last_silences = time.monotonic()
        self._next_catalog: Catalog | None = None
        self._checkpoints = BackgroundWriter("alerts-checkpoint")
        self._device_records = BackgroundWriter("alerts-devices")
        # Sightings a failed device record gave back (set by its thread, read once it has finished).
        self._unrecorded: dict[tuple[str, str], int] = {}
        self._snapshot: SnapshotInPieces | None = None  # a checkpoint's snapshot being taken
        # The service sets it: at its first snapshot the engine is warm (every series exists).
        self.freeze_when_warm = False
        self.counters = AlertCounters()

    def transitions_of(self, msg: Inbound) -> list[Transition]:
        try:
            topic = Topic.parse(msg.topic)
            message = decode_message(topic.kind, msg.payload)
        except ContractError as err:
            # Ingest keeps the dead letter; counting it twice would inflate the figures.
            log.debug("alerts ignores %s: %s", msg.topic, err.reason)
            self.counters.ignored += 1
            return []
        if msg.retained and isinstance(message, TelemetryMessage | EventMessage):
            # Never retained by contract: the broker replays a retained one to every subscriber that
            # joins, so judging it would raise the same alarm again at each restart.
            log.warning("alerts ignores a retained %s message on %s", topic.kind.value, msg.topic)
            self.counters.ignored += 1
            return []
        out: list[Transition] = []
        if isinstance(message, TelemetryMessage | EventMessage):
            self._look_again_for_unknown(topic, message)
        if isinstance(message, TelemetryMessage):
            for reading in message.readings:
                out += self._engine.on_reading(topic.community, topic.gateway, reading)
        elif isinstance(message, EventMessage):
            for event in message.events:
                out += self._engine.on_event(topic.community, topic.gateway, event)
        elif isinstance(message, StateMessage):
            out += self._engine.on_state(topic.community, topic.gateway, message)
            self._gateway_states[(topic.community, topic.gateway)] = message
        return out

    def _look_again_for_unknown(self, topic: Topic, message: TelemetryMessage | EventMessage) -> None:
        """A device the engine does not know may have been registered a moment ago: its first reading
        is judged on the registry as it is now, not ignored until the next poll and tick."""
        if self.live is None:
            return
        items = message.readings if isinstance(message, TelemetryMessage) else message.events
        if not any(self._engine.is_unknown(topic.community, topic.gateway, i.device) for i in items):
            return
        if self.live.look_again():
            self._apply_offered_catalog()  # the reload just made offered it

    def _commit(self, transitions: list[Transition]) -> bool:
        if not transitions:
            return True
        return retry_until_stopped(lambda: self._book.apply(transitions), "case store", self._stop, RETRYABLE)

    def process(self, batch: list[Inbound]) -> bool:
        began = time.perf_counter()
        try:
            return self._process(batch)
        finally:
            self.counters.pauses.add("batch", (time.perf_counter() - began) * 1000)

    def _process(self, batch: list[Inbound]) -> bool:
        transitions = [tr for msg in batch for tr in self.transitions_of(msg)]
        began = time.perf_counter()
        if not self._commit(transitions):
            return False
        if transitions:
            self.counters.pauses.add("commit", (time.perf_counter() - began) * 1000)
        states, self._gateway_states = self._gateway_states, {}
        revived, self._engine.revived = self._engine.revived, set()
        for (community, gateway), state in states.items():
            try:
                record_gateway(self._book.db, community, gateway, state)
            except SQLAlchemyError as err:
                log.warning("state of gateway %s/%s not recorded (%s)", community, gateway, err)
        for community, gateway in revived - states.keys():
            try:
                record_heard(self._book.db, community, gateway)
            except SQLAlchemyError as err:
                log.warning("gateway %s/%s heard from, not recorded (%s)", community, gateway, err)
        self.counters.messages += len(batch)
        self.counters.transitions += len(transitions)
        return True

    def _apply_offered_catalog(self) -> None:
        """The newest catalog offered since the last one applied, if any (on the stream's thread)."""
        catalog, self._next_catalog = self._next_catalog, None
        if catalog is not None:
            self._engine.use_catalog(catalog)

    def offer_catalog(self, catalog: Catalog) -> None:
        """A newer registry (from the polling thread): applied at the next tick, on the stream's thread."""
        self._next_catalog = catalog

    # -- rules changed while running (#28): offered by the definitions poller, applied at a tick ------

    _next_rules: list[Rule] | None = None
    definitions: LiveDefinitions | None = None

    def watch_definitions(self, live: LiveDefinitions, categories: Callable[[], Collection[str]]) -> None:
        self.definitions = live
        self._categories = categories
        live.on_change(self.offer_definitions)

    def offer_definitions(self, found: Definitions) -> None:
        """Newer stored rule files (from the polling thread): the rule set they make is applied at the
        next tick; ContractError (the last good set kept) when they do not make one."""
        if found.rule_files:  # none stored yet: the rule files of config/ keep running
            files = ((f.name, f.document) for f in found.rule_files.values())
            self._next_rules = rules_of_files(files, self._categories())

    def _apply_rules(self) -> None:
        rules, self._next_rules = self._next_rules, None
        if rules is not None:
            transitions = self._engine.use_rules(rules)
            if self._commit(transitions):
                self.counters.transitions += len(transitions)
            log.info("alerts: %d rules running", len(rules))

    def tick(self) -> None:
        """Timers ten times a second (a deadman is due within 0.1 s); silences once a second; now and
        then the devices seen and a checkpoint."""
        now = time.monotonic()
        if now - self._last_tick < TIMER_PERIOD_S:
            return
        self._last_tick = now
        began = time.perf_counter()
        try:
            self._tick(now)
        finally:
            self.counters.pauses.add("tick", (time.perf_counter() - began) * 1000)

    def _tick(self, now: float) -> None:
        self._apply_offered_catalog()
        self._apply_rules()
        if now - self._last_silences >= SILENCES_PERIOD_S:
            self._last_silences = now
            try:
                self._engine.set_silences(self._silences.current())
            except SQLAlchemyError as err:
                log.warning("could not reload silences (%s); keeping the last ones", err)
        transitions = self._engine.tick()
        if self._commit(transitions):
            self.counters.transitions += len(transitions)
        if now - self._last_devices_record >= DEVICES_RECORD_S and not self._device_records.busy:
            # Beside the stream: a thousand rows are tens of milliseconds that no alert should wait for.
            self._last_devices_record = now
            reported, self._engine.reported = self._engine.reported, {}
            reported, self._unrecorded = self._unrecorded | reported, {}  # newer sightings win
            self._device_records.start(self._record_devices, reported)
        if self._snapshot is not None:
            self._snapshot_piece()
        elif now - self._last_checkpoint >= self._checkpoint_interval_s and not self._checkpoints.busy:
            self._snapshot = SnapshotInPieces(self._engine.series_keys())
            self._last_checkpoint = now

    def _snapshot_piece(self) -> None:
        """The checkpoint's snapshot is taken on this thread, between batches, a piece per tick;
        encoding and writing megabytes of windows happen beside the stream."""
        assert self._snapshot is not None
        began = time.perf_counter()
        done = self._snapshot.take(self._engine)
        self.counters.pauses.add("snapshot", (time.perf_counter() - began) * 1000)
        if done:
            self._checkpoints.start(self._save, self._snapshot.state)
            self._snapshot = None
            if self.freeze_when_warm:
                self.freeze_when_warm = False
                freeze_long_lived()

    def _record_devices(self, reported: dict[tuple[str, str], int]) -> None:
        try:
            record_devices(self._book.db, reported)
        except SQLAlchemyError as err:
            self._unrecorded = reported  # the next record takes them again
            log.warning("devices seen not recorded (%s); the next attempt retries", err)

    def _save(self, snapshot: dict[str, Any]) -> None:
        try:
            self._book.save_checkpoint(self._partition, encode_gently(snapshot))
        except SQLAlchemyError as err:
            log.warning("checkpoint of %s failed (%s); the next one retries", self._partition, err)

    def checkpoint(self) -> None:
        """A synchronous checkpoint, for a clean stop (the last device record finished first)."""
        self._device_records.join()
        self._checkpoints.join()
        self._save(self._engine.snapshot())


@dataclass
class SnapshotInPieces:
    """An engine snapshot taken SNAPSHOT_PIECE series at a time, one piece per tick."""

    keys: list[str]
    taken: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"series": {}})

    def take(self, engine: AlertEngine) -> bool:
        """The next piece; True once the snapshot is complete (``state``)."""
        piece = self.keys[self.taken : self.taken + SNAPSHOT_PIECE]
        self.state["series"].update(engine.snapshot_series(piece))
        self.taken += len(piece)
        if self.taken < len(self.keys):
            return False
        self.state["gateways"] = engine.snapshot_gateways()
        return True


def reconcile(saved: dict[str, Any] | None, alerts: Iterable[Alert]) -> dict[str, Any]:
    """The checkpoint brought up to date with the alerts the case store has.

    A crash loses the engine's state since its last checkpoint, not the transitions: those were
    committed before their messages were acknowledged. Without this, an alert that fired after the
    checkpoint is inactive to the restarted engine; a `for` rule then goes pending and fires again, and
    the same alert joins its case a second time (or, past the join window, opens a duplicate case).
    A pending alert keeps what the checkpoint says: its timer is re-derived from the stream.
    """
    series = dict((saved or {}).get("series", {}))
    for alert in alerts:
        status = "inactive" if alert.status == "resolved" else alert.status
        entry = series.get(alert.fingerprint)
        state = AlertState.load(entry["alert"]) if entry else AlertState()
        if status not in ("inactive", "firing", "unknown") or status == state.status:
            continue
        began = alert.resolved_at if status == "inactive" and alert.resolved_at else alert.started_at
        state.status, state.since_ms = status, int(began.timestamp() * 1000)  # type: ignore[assignment]
        if status != "inactive":
            state.flapping, state.silenced = alert.flapping, alert.silenced or alert.inhibited
        series[alert.fingerprint] = {
            "rule": alert.rule_id,
            "version": entry["version"] if entry else None,
            "alert": state.dump(),
            "condition": entry["condition"] if entry else None,
        }
    return {**(saved or {}), "series": series}


def build_processor(settings: AlertSettings, stop: threading.Event) -> tuple[AlertProcessor, list[str]]:
    """The processor with its engine restored from the last checkpoint, and the topics to follow."""
    db = make_engine(settings.database_url)
    create_schema(db)
    policy = CasePolicy.load(settings.config_dir, db)  # with the organisation's run-time changes
    rules = load_rules(settings.config_dir, policy.categories)
    live = open_live_catalog(db, settings.config_dir, settings.registry_poll_s)
    catalog = live.catalog
    communities = sorted(settings.alerts_communities or catalog.communities)
    if unknown := set(communities) - set(catalog.communities):
        raise ValueError(f"YIWANG_ALERTS_COMMUNITIES names unknown communities: {', '.join(sorted(unknown))}")
    partition = ",".join(communities)
    book = CaseBook(db, policy, timedelta(minutes=settings.case_join_window_minutes))
    # Unpartitioned, the engine follows the registry's communities as they are added.
    engine = AlertEngine(rules, catalog, communities=settings.alerts_communities or None)
    saved = book.load_checkpoint(partition)
    with Session(db) as session:
        alerts = session.scalars(select(Alert).where(Alert.community.in_(communities))).all()
    engine.restore(reconcile(saved, alerts))
    processor = AlertProcessor(
        engine,
        book,
        SilenceStore(db),
        stop,
        partition=partition,
        checkpoint_interval_s=settings.checkpoint_interval_s,
        live=live,
    )
    # Rules as stored data (#28): seeded from config/ on first start, then followed while running.
    stored_definitions.seed_if_empty(db, *config_definitions(settings.config_dir, policy.categories))
    processor.watch_definitions(LiveDefinitions(db, settings.registry_poll_s), lambda: policy.categories)
    kinds = (TopicKind.TELEMETRY, TopicKind.EVENT, TopicKind.STATE)
    # Unpartitioned: every community, today's and those the registry adds while running.
    partitions: list[str | None] = list(settings.alerts_communities or []) or [None]
    topics = [subscription(kind, community=c) for c in partitions for kind in kinds]
    log.info(
        "alerts evaluating %d rules for %s (checkpoint %s)",
        len(rules),
        partition,
        "restored" if saved else "none",
    )
    return processor, topics


def run(settings: AlertSettings, stop: threading.Event) -> None:
    processor, topics = build_processor(settings, stop)
    consumer = AckingConsumer(
        name="alerts",
        client_id=settings.alerts_client_id,
        settings=settings,
        topics=topics,
        handle=processor.process,
        idle=processor.tick,
        stop=stop,
        batch_messages=BATCH_MESSAGES,
        batch_wait_s=BATCH_WAIT_S,
    )
    processor.counters.pauses.watch_gc()
    freeze_long_lived()  # the catalog, rules and restored engine
    processor.freeze_when_warm = True  # and, at the first checkpoint, the series made since
    live = processor.live
    if live is not None:
        live.start()
    if processor.definitions is not None:
        processor.definitions.start()

    def health() -> dict[str, Any]:
        return processor.counters.snapshot() | ({"registry": live.status()} if live is not None else {})

    HeartbeatThread(make_engine(settings.database_url), "alerts", health, stop).start()
    try:
        consumer.run()
    finally:
        processor.counters.pauses.unwatch_gc()
        if live is not None:
            live.stop()
        if processor.definitions is not None:
            processor.definitions.stop()
        processor.checkpoint()
