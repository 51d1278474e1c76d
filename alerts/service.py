"""The alert service: evaluate rules on the live MQTT stream and turn firing alerts into cases."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic_settings import SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from alerts.casebook import CaseBook, create_schema
from alerts.engine import AlertEngine, Transition
from alerts.rules import load_categories, load_rules
from contract import (
    ContractError,
    EventMessage,
    TelemetryMessage,
    Topic,
    TopicKind,
    decode_message,
    subscription,
)
from contract.catalog import load_catalog
from yiwang.common.consumer import AckingConsumer, Inbound, retry_until_stopped
from yiwang.common.db import make_engine
from yiwang.common.heartbeat import HeartbeatThread
from yiwang.common.settings import ServiceSettings

log = logging.getLogger(__name__)


class AlertSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    alerts_client_id: str = "yiwang-alerts"
    case_join_window_minutes: float = 60


@dataclass
class AlertCounters:
    messages: int = 0
    ignored: int = 0
    transitions: int = 0

    def snapshot(self) -> dict[str, Any]:
        return dict(vars(self))


class AlertProcessor:
    def __init__(self, engine: AlertEngine, book: CaseBook, stop: threading.Event) -> None:
        self._engine, self._book, self._stop = engine, book, stop
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
        out: list[Transition] = []
        if isinstance(message, TelemetryMessage):
            for reading in message.readings:
                out += self._engine.on_reading(topic.community, topic.gateway, reading)
        elif isinstance(message, EventMessage):
            for event in message.events:
                out += self._engine.on_event(topic.community, topic.gateway, event)
        return out

    def process(self, batch: list[Inbound]) -> bool:
        transitions = [tr for msg in batch for tr in self.transitions_of(msg)]
        if transitions and not retry_until_stopped(
            lambda: self._book.apply(transitions), "case store", self._stop, (SQLAlchemyError,)
        ):
            return False
        self.counters.messages += len(batch)
        self.counters.transitions += len(transitions)
        return True


def run(settings: AlertSettings, stop: threading.Event) -> None:
    engine = make_engine(settings.database_url)
    create_schema(engine)
    categories = load_categories(settings.config_dir)
    rules = load_rules(settings.config_dir, categories)
    book = CaseBook(engine, categories, timedelta(minutes=settings.case_join_window_minutes))
    processor = AlertProcessor(
        AlertEngine(rules, load_catalog(settings.config_dir), book.firing_fingerprints()), book, stop
    )
    consumer = AckingConsumer(
        name="alerts",
        client_id=settings.alerts_client_id,
        settings=settings,
        topics=[subscription(TopicKind.TELEMETRY), subscription(TopicKind.EVENT)],
        handle=processor.process,
        stop=stop,
        batch_messages=100,
    )
    HeartbeatThread(engine, "alerts", processor.counters.snapshot, stop).start()
    log.info("alerts evaluating %d rules", len(rules))
    try:
        consumer.run()
    finally:
        engine.dispose()
