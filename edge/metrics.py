"""The gateway's local ``/metrics`` (prometheus-client): spool depth, age, drops, publishing, hand-off.

Values are read from the spool and publisher when scraped (a custom collector), so nothing has to
keep gauges in step with the data path, and a scrape costs a few SQLite lookups per gateway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.handoff import Handoff
from edge.publisher import GatewayPublisher

log = logging.getLogger(__name__)

_LABELS = ["community", "gateway"]


class _SpoolCollector(Collector):
    def __init__(self) -> None:
        self.publishers: list[GatewayPublisher] = []

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily(
            "yiwang_edge_spool_depth", "Readings and events spooled, not yet acknowledged.", labels=_LABELS
        )
        size = GaugeMetricFamily("yiwang_edge_spool_bytes", "Compressed bytes in the spool.", labels=_LABELS)
        age = GaugeMetricFamily(
            "yiwang_edge_spool_oldest_age_seconds",
            "Age of the oldest spooled data (0: empty).",
            labels=_LABELS,
        )
        seq = GaugeMetricFamily("yiwang_edge_last_seq", "Last seq assigned to a message.", labels=_LABELS)
        connected = GaugeMetricFamily("yiwang_edge_connected", "1 while connected.", labels=_LABELS)
        dropped = CounterMetricFamily(
            "yiwang_edge_spool_dropped",
            "Readings/events given up by the spool overflow policy, by reason.",
            labels=[*_LABELS, "reason"],
        )
        published = CounterMetricFamily(
            "yiwang_edge_published_messages", "Messages acknowledged (this run).", labels=_LABELS
        )
        outages = CounterMetricFamily(
            "yiwang_edge_broker_outages", "Broker outages begun (this run).", labels=_LABELS
        )
        failures = CounterMetricFamily(
            "yiwang_edge_broker_connect_failures",
            "Lost connections and failed connect attempts (this run).",
            labels=_LABELS,
        )
        now_ms = time.time_ns() // 1_000_000
        for pub in list(self.publishers):
            labels = [pub.community, pub.gateway]
            try:
                stats = pub.spool.stats()
            except Exception:  # a closed spool during shutdown: skip, do not fail the scrape
                log.debug("gateway %s: spool not readable for /metrics", pub.gateway, exc_info=True)
                continue
            depth.add_metric(labels, stats.depth)
            size.add_metric(labels, stats.bytes)
            age.add_metric(labels, 0 if stats.oldest_ts is None else max(0, now_ms - stats.oldest_ts) / 1000)
            seq.add_metric(labels, stats.last_seq)
            connected.add_metric(labels, 1 if pub.connected else 0)
            for reason, value in stats.dropped.items():
                dropped.add_metric([*labels, reason], value)
            published.add_metric(labels, pub.published)
            outages.add_metric(labels, pub.outage.outages)
            failures.add_metric(labels, pub.outage.connect_failures)
        yield from (depth, size, age, seq, connected, dropped, published, outages, failures)


class _HandoffCollector(Collector):
    """The bus tasks' hand-off to the publishing thread: its depth and every time it pushed back."""

    def __init__(self) -> None:
        self.handoffs: list[Handoff] = []

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily(
            "yiwang_edge_handoff_depth", "Batches handed over, not yet spooled.", labels=["handoff"]
        )
        waits = CounterMetricFamily(
            "yiwang_edge_handoff_waits",
            "Times a bus task found the hand-off full and waited (push-back, nothing dropped).",
            labels=["handoff"],
        )
        wait_s = CounterMetricFamily(
            "yiwang_edge_handoff_wait_seconds",
            "Time bus tasks spent waiting for the hand-off.",
            labels=["handoff"],
        )
        failed = CounterMetricFamily(
            "yiwang_edge_handoff_failed_jobs", "Handed-over jobs that raised (logged).", labels=["handoff"]
        )
        for handoff in list(self.handoffs):
            depth.add_metric([handoff.name], handoff.depth)
            waits.add_metric([handoff.name], handoff.waits)
            wait_s.add_metric([handoff.name], handoff.wait_s)
            failed.add_metric([handoff.name], handoff.failed)
        yield from (depth, waits, wait_s, failed)


class EdgeMetrics:
    """One registry per agent process; ``serve`` starts ``/metrics`` on a local port."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._collector = _SpoolCollector()
        self._handoffs = _HandoffCollector()
        self.registry.register(self._collector)
        self.registry.register(self._handoffs)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def add(self, publisher: GatewayPublisher) -> None:
        self._collector.publishers.append(publisher)

    def add_handoff(self, handoff: Handoff) -> None:
        self._handoffs.handoffs.append(handoff)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics``; returns the bound port (``port=0`` picks a free one)."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("edge: /metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
