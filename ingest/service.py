"""The ingest service: consume telemetry at QoS 1, store it, and only then acknowledge it.

Guarantee: a message is PUBACKed only after its readings are in the time-series store, in the disk
spool (store down or slow) or — refused content — in the dead-letter store. We keep paho's
``manual_ack`` (rather than aiomqtt: slower here, ~8.4k msgs/s at QoS 1, and an unbounded queue) and
make it fast by pipelining: batches of ~5,000 readings, four in flight (decoding while others are
written), acks in arrival order.

Replicas: each needs its own client id — ``YIWANG_INGEST_CLIENT_ID`` plus ``YIWANG_INGEST_REPLICA``
(e.g. ``yiwang-ingest-2``) — and a shared group (``YIWANG_INGEST_SHARE_GROUP=ingest``) so they split
``$share/ingest/yiwang/v1/+/+/telemetry`` between them over MQTT 5.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.consumer import AckingConsumer
from common.db import make_engine
from common.heartbeat import HeartbeatThread
from common.redact import redact
from common.settings import ServiceSettings
from contract import TopicKind, subscription
from ingest import deadletter_gate, deadletters
from ingest.deadletter_gate import DeadLetterGate
from ingest.deadletters import DeadLetterStore
from ingest.fairness import Deferral, GatewayBudget
from ingest.metrics import IngestMetrics, serve
from ingest.replay import Replayer
from ingest.spool import DiskSpool, MessageSpool
from ingest.writer import RETRYABLE, BatchWriter, Counters
from registry.live import open_live_catalog
from series.factory import open_store

__all__ = ["RETRYABLE", "BatchWriter", "Counters", "IngestSettings", "run"]

log = logging.getLogger(__name__)


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    ingest_client_id: str = "yiwang-ingest"
    ingest_replica: str | None = Field(
        default=None, description="Suffix of the client id, unique per replica (YIWANG_INGEST_REPLICA)."
    )
    ingest_share_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group; None = plain subscription (3.1.1)."
    )
    ingest_batch_messages: int = Field(default=5000, ge=1)
    ingest_batch_bytes: int = Field(
        default=400_000, ge=1, description="Cut a batch at this many payload bytes (~5,000 readings)."
    )
    # Measured here: write latency, not CPU, limits one process; 4 batches in flight beat 2 by ~1.5×.
    ingest_writers: int = Field(default=4, ge=1, le=16, description="Batches in flight at once.")
    ingest_queue_size: int = Field(default=10_000, ge=1)
    ingest_receive_maximum: int = Field(
        default=20_000, ge=1, le=65535, description="MQTT 5 in-flight window the broker may send us."
    )
    ingest_spool_dir: Path | None = Field(
        default=Path("var/ingest-spool"), description="Outage spool; None = retry in place, no spool."
    )
    ingest_spool_max_bytes: int = Field(default=1024**3, ge=1)
    # Fairness (ingest/fairness.py): ~4 MB/s is ~40,000 readings/s — hundreds of times what a gateway
    # of a few hundred sensors sends — so only a runaway gateway is ever deferred.
    ingest_gateway_bytes_per_s: float = Field(
        default=4_000_000, ge=0, description="Payload bytes/s per gateway before deferral; 0 = off."
    )
    ingest_gateway_burst_bytes: float = Field(
        default=16_000_000, gt=0, description="Bucket size (a larger message is always deferred)."
    )
    ingest_deferral_max_bytes: int = Field(default=1024**3, ge=1)
    # Dead letters (ingest/deadletters.py, ingest/deadletter_gate.py): what is not kept is counted.
    ingest_dead_letters_per_s: float = Field(
        default=deadletter_gate.PER_S, gt=0, description="Dead letters kept per gateway per second."
    )
    ingest_dead_letters_burst: float = Field(default=deadletter_gate.BURST, ge=1)
    ingest_dead_letter_payload_bytes: int = Field(
        default=deadletters.KEEP_PAYLOAD_BYTES, ge=1, description="Payload kept per dead letter."
    )
    ingest_dead_letter_max_bytes: int = Field(
        default=deadletters.MAX_BYTES, ge=1, description="Size budget of the dead-letter store."
    )
    ingest_metrics_host: str = "127.0.0.1"
    ingest_metrics_port: int = Field(default=9464, ge=0, le=65535, description="0 = no /metrics.")

    @property
    def client_id(self) -> str:
        return (
            f"{self.ingest_client_id}-{self.ingest_replica}" if self.ingest_replica else self.ingest_client_id
        )


def run(settings: IngestSettings, stop: threading.Event) -> None:
    db = make_engine(settings.database_url)
    store = open_store(settings.series_url)
    metrics = IngestMetrics()
    spool = None
    if settings.ingest_spool_dir is not None:
        # One spool per replica: two processes must never drain (and delete) each other's segments.
        spool = DiskSpool(
            settings.ingest_spool_dir / settings.client_id, max_bytes=settings.ingest_spool_max_bytes
        )
    deferral = None
    if settings.ingest_spool_dir is not None and settings.ingest_gateway_bytes_per_s > 0:
        deferral = Deferral(
            GatewayBudget(settings.ingest_gateway_bytes_per_s, settings.ingest_gateway_burst_bytes),
            MessageSpool(
                settings.ingest_spool_dir / f"{settings.client_id}.deferred",
                max_bytes=settings.ingest_deferral_max_bytes,
            ),
            metrics,
        )
    # Devices added, moved or retired in the registry are checked against within a poll, no restart.
    live = open_live_catalog(db, settings.config_dir, settings.registry_poll_s)
    writer = BatchWriter(
        catalog=live.catalog,
        store=store,
        dead=DeadLetterStore(
            db,
            max_bytes=settings.ingest_dead_letter_max_bytes,
            keep_payload_bytes=settings.ingest_dead_letter_payload_bytes,
        ),
        gate=DeadLetterGate(settings.ingest_dead_letters_per_s, settings.ingest_dead_letters_burst),
        look_again=live.look_again,
        stop=stop,
        spool=spool,
        metrics=metrics,
        deferral=deferral,
    )
    shared = settings.ingest_share_group is not None
    consumer = AckingConsumer(
        name="ingest",
        client_id=settings.client_id,
        settings=settings,
        # Events too: a gateway numbers both with one seq, and a bad event belongs in the dead letters.
        topics=[
            subscription(kind, share_group=settings.ingest_share_group)
            for kind in (TopicKind.TELEMETRY, TopicKind.EVENT)
        ],
        handle=writer.process,
        stop=stop,
        idle=lambda: metrics.queue_depth.set(consumer.queue_depth),
        batch_messages=settings.ingest_batch_messages,
        batch_bytes=settings.ingest_batch_bytes,
        queue_size=settings.ingest_queue_size,
        pipeline=settings.ingest_writers,
        mqtt5=shared,
        receive_maximum=settings.ingest_receive_maximum if shared else None,
    )
    drainer = threading.Thread(target=writer.drain, name="ingest-spool-drain", daemon=True)
    drainer.start()
    # Deferred messages go through when the live stream leaves room: less than a batch waiting.
    has_room = lambda: consumer.queue_depth < settings.ingest_batch_messages  # noqa: E731
    deferred_drainer = threading.Thread(
        target=writer.drain_deferred,
        args=(has_room, settings.ingest_batch_messages),
        name="ingest-deferred-drain",
        daemon=True,
    )
    deferred_drainer.start()
    stop_metrics = (
        serve(metrics, settings.ingest_metrics_host, settings.ingest_metrics_port)
        if settings.ingest_metrics_port
        else (lambda: None)
    )
    # Dead letters an operator marked for replay (through the API) go through a writer of their own.
    replayer = Replayer(
        db=db, store=store, catalog=live.catalog, refresh=live.refresh, metrics=metrics, stop=stop
    )
    replay_thread = threading.Thread(target=replayer.run, name="ingest-replay", daemon=True)
    replay_thread.start()
    live.on_change(writer.use_catalog)
    live.on_change(replayer.use_catalog)
    live.start()
    HeartbeatThread(
        db, "ingest", lambda: writer.counters.snapshot() | {"registry": live.status()}, stop
    ).start()
    log.info("ingest %s writing to %s", settings.client_id, redact(settings.series_url))
    try:
        consumer.run()
    finally:
        stop.set()
        drainer.join(30)
        deferred_drainer.join(30)
        replay_thread.join(30)
        stop_metrics()
        live.stop()
        store.close()
        db.dispose()
