"""/metrics: what ingest counts, served over HTTP by prometheus-client."""

from __future__ import annotations

import httpx
import pytest

from ingest.metrics import IngestMetrics, reason_class, serve
from yiwang.servers import free_port


def test_metrics_are_served_and_stop_cleanly() -> None:
    metrics = IngestMetrics()
    metrics.messages.inc(3)
    metrics.dead_letters.labels(reason="unknown_device").inc()
    metrics.seq_gaps.labels(gateway="c/gw-01").set(2)
    metrics.spool_points.set(5000)
    port = free_port()
    stop = serve(metrics, "127.0.0.1", port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        stop()
    assert "yiwang_ingest_messages_total 3.0" in text
    assert 'yiwang_ingest_dead_letters_total{reason="unknown_device"} 1.0' in text
    assert 'yiwang_ingest_seq_gaps{gateway="c/gw-01"} 2.0' in text
    assert "yiwang_ingest_spool_points 5000.0" in text


def test_a_busy_port_is_not_fatal() -> None:
    port = free_port()
    first = serve(IngestMetrics(), "127.0.0.1", port)
    try:
        second = serve(IngestMetrics(), "127.0.0.1", port)  # logged, ingest goes on without /metrics
        second()
    finally:
        first()


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("readings.0.device: unknown device 'x' on gateway c/g", "unknown_device"),
        ("not valid JSON: Invalid JSON: expected ident", "bad_json"),
        ("invalid topic 'a/b': expected yiwang/v1/<community>/<gateway>/<kind>", "bad_topic"),
        ("rejected by the time-series store: field type conflict", "store_rejected"),
        ("readings.0.values.level_cm=900.0 outside the valid range", "invalid"),
    ],
)
def test_dead_letter_reasons_map_to_few_labels(reason: str, label: str) -> None:
    assert reason_class(reason) == label
