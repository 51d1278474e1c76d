"""Prometheus metrics of one ingest process, on a registry of its own (several can share a test run)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)


def _registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=_registry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "yiwang_ingest_messages", "Messages handled (stored or dead-lettered)", registry=r
        )
        self.readings = Counter("yiwang_ingest_readings", "Readings written or spooled", registry=r)
        self.batches = Counter("yiwang_ingest_batches", "Batches acknowledged", registry=r)
        self.write_seconds = Histogram(
            "yiwang_ingest_write_seconds",
            "Latency of one store write (a batch of up to ~5,000 points)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.write_errors = Counter(
            "yiwang_ingest_write_errors", "Store writes that failed and were retried or spooled", registry=r
        )
        self.spool_points = Gauge(
            "yiwang_ingest_spool_points", "Points waiting in the outage spool", registry=r
        )
        self.spool_bytes = Gauge("yiwang_ingest_spool_bytes", "Bytes of the outage spool", registry=r)
        self.dead_letters = Counter(
            "yiwang_ingest_dead_letters", "Dead-lettered messages by reason", ["reason"], registry=r
        )
        self.dead_letters_discarded = Counter(
            "yiwang_ingest_dead_letters_discarded",
            "Dead letters not kept: over their gateway's rate cap (rate_limited) or the oldest, expired "
            "to keep the store within its size budget (retention)",
            ["cause"],
            registry=r,
        )
        self.dead_letters_truncated = Counter(
            "yiwang_ingest_dead_letters_truncated",
            "Dead letters whose payload was kept only in part (longer than the store keeps)",
            registry=r,
        )
        self.replayed = Counter(
            "yiwang_ingest_replayed",
            "Dead letters replayed at an operator's request: stored (and removed) or refused again",
            ["outcome"],
            registry=r,
        )
        self.duplicates = Counter(
            "yiwang_ingest_duplicate_messages",
            "Redelivered messages (seq seen before)",
            ["gateway"],
            registry=r,
        )
        # A gauge, not a counter: a gap closes when its late message arrives (pipelined batches).
        self.seq_gaps = Gauge(
            "yiwang_ingest_seq_gaps", "Messages missing between seqs seen so far", ["gateway"], registry=r
        )
        # Kept out of the gaps: a seq no honest loss explains (ingest/seq_ledger.py).
        self.seq_anomalies = Counter(
            "yiwang_ingest_seq_anomalies",
            "Seqs implausibly far ahead of the gateway's highest: not counted as missing messages",
            ["gateway"],
            registry=r,
        )
        self.seq_resets = Counter(
            "yiwang_ingest_seq_resets",
            "Seqs behind the gateway's highest with new readings: its counter restarted (spool wiped)",
            ["gateway"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "yiwang_ingest_queue_depth", "Messages received, not yet handled", registry=r
        )
        self.deferred = Counter(
            "yiwang_ingest_deferred_messages",
            "Messages of a gateway over its budget, set aside to be handled with spare capacity",
            ["gateway"],
            registry=r,
        )
        self.deferred_depth = Gauge(
            "yiwang_ingest_deferred_depth", "Deferred messages not yet handled", registry=r
        )


def reason_class(reason: str) -> str:
    """A bounded label for a dead-letter reason (the full text goes to the dead-letter store)."""
    if reason.startswith("retained message"):
        return "retained"
    if "unknown event kind" in reason:
        return "unknown_event_kind"
    if "unknown device" in reason:
        return "unknown_device"
    if "retired device" in reason:
        return "retired_device"
    if "rejected by the time-series store" in reason:
        return "store_rejected"
    if "ingest takes telemetry" in reason or "topic" in reason.lower():
        return "bad_topic"
    if "json" in reason.lower() or "parse" in reason.lower():
        return "bad_json"
    return "invalid"


def serve(metrics: IngestMetrics, host: str, port: int) -> Callable[[], None]:
    """Expose /metrics; returns how to stop it. A busy port is logged, not fatal: the data path
    matters more than the view of it."""
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as err:
        log.error("ingest metrics not served on %s:%d: %s", host, port, err)
        return lambda: None
    log.info("ingest metrics on http://%s:%d/metrics", host, port)

    def shutdown() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return shutdown
