"""The ingest service: consume telemetry at QoS 1, store it, and only then acknowledge it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic_settings import SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from contract import ContractError, TopicKind, subscription
from contract.catalog import Catalog, load_catalog
from ingest.deadletters import DeadLetter, DeadLetterStore
from ingest.store import StoreRejected, StoreUnavailable, TimeSeriesStore
from ingest.store.factory import open_store
from ingest.validate import Decoded, decode_telemetry
from yiwang.common.consumer import AckingConsumer, Inbound, retry_until_stopped
from yiwang.common.db import make_engine
from yiwang.common.heartbeat import HeartbeatThread
from yiwang.common.settings import ServiceSettings

log = logging.getLogger(__name__)
RETRYABLE = (StoreUnavailable, SQLAlchemyError)


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    ingest_client_id: str = "yiwang-ingest"
    ingest_share_group: str | None = None
    ingest_batch_messages: int = 500
    ingest_queue_size: int = 10_000


@dataclass
class Counters:
    messages: int = 0
    points: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    gaps: int = 0
    last_seq: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "last_seq"}


class BatchWriter:
    """Stores a batch of messages: points to the series store, failures to the dead-letter store."""

    def __init__(
        self, *, catalog: Catalog, store: TimeSeriesStore, dead: DeadLetterStore, stop: threading.Event
    ) -> None:
        self._catalog, self._store, self._dead, self._stop = catalog, store, dead, stop
        self.counters = Counters()

    def process(self, batch: list[Inbound]) -> bool:
        """True when every message of the batch is stored (or dead-lettered) and may be acknowledged."""
        decoded: list[tuple[Inbound, Decoded]] = []
        letters: list[DeadLetter] = []
        for msg in batch:
            try:
                decoded.append((msg, decode_telemetry(msg.topic, msg.payload, self._catalog)))
            except ContractError as err:
                log.info("dead letter from %s: %s", msg.topic, err.reason)
                letters.append(DeadLetter(msg.topic, err.reason, msg.payload))
        refused = self._write_points(decoded)
        if refused is None:
            return False
        letters += refused
        if not retry_until_stopped(
            lambda: self._dead.add_many(letters), "dead-letter store", self._stop, RETRYABLE
        ):
            return False
        self._count(decoded, letters)
        return True

    def _write_points(self, decoded: list[tuple[Inbound, Decoded]]) -> list[DeadLetter] | None:
        """Dead letters for messages the store refused; None when stopped before the store accepted."""
        points = [p for _, d in decoded for p in d.points]
        if not points:
            return []
        try:
            stored = retry_until_stopped(
                lambda: self._store.write(points), "time-series store", self._stop, RETRYABLE
            )
            return [] if stored else None
        except StoreRejected as err:
            if len(decoded) == 1:
                msg = decoded[0][0]
                return [DeadLetter(msg.topic, f"rejected by the time-series store: {err}", msg.payload)]
        # One refused point must not cost its neighbours: retry message by message.
        letters: list[DeadLetter] = []
        for item in decoded:
            refused = self._write_points([item])
            if refused is None:
                return None
            letters += refused
        return letters

    def _count(self, decoded: list[tuple[Inbound, Decoded]], letters: list[DeadLetter]) -> None:
        c = self.counters
        c.messages += len(decoded) + len(letters)
        c.dead_letters += len(letters)
        for _, d in decoded:
            c.points += len(d.points)
            key = f"{d.topic.community}/{d.topic.gateway}"
            last = c.last_seq.get(key)
            if last is not None and d.seq <= last:
                c.duplicates += 1  # redelivery: the write above overwrote the same points
                continue
            if last is not None and d.seq > last + 1:
                c.gaps += d.seq - last - 1
            c.last_seq[key] = d.seq


def run(settings: IngestSettings, stop: threading.Event) -> None:
    engine = make_engine(settings.database_url)
    store = open_store(settings.series_url)
    writer = BatchWriter(
        catalog=load_catalog(settings.config_dir), store=store, dead=DeadLetterStore(engine), stop=stop
    )
    consumer = AckingConsumer(
        name="ingest",
        client_id=settings.ingest_client_id,
        settings=settings,
        topics=[subscription(TopicKind.TELEMETRY, share_group=settings.ingest_share_group)],
        handle=writer.process,
        stop=stop,
        batch_messages=settings.ingest_batch_messages,
        queue_size=settings.ingest_queue_size,
    )
    HeartbeatThread(engine, "ingest", writer.counters.snapshot, stop).start()
    log.info("ingest writing to %s", settings.series_url.split("?")[0])
    try:
        consumer.run()
    finally:
        store.close()
        engine.dispose()
