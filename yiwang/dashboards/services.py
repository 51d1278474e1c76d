"""The services' own health from their Prometheus metrics: ingest, the API and the gateways' agents.

The metric names are the ones ``ingest/metrics.py``, ``api/metrics.py`` and ``edge/metrics.py`` export
(a counter ``x`` is scraped as ``x_total``, a histogram as ``x_bucket``/``x_sum``/``x_count``); the
dashboards' test collects those registries and refuses a query naming anything else.
"""

from __future__ import annotations

from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from yiwang.dashboards.datasources import prometheus as prometheus_datasource
from yiwang.dashboards.panels import series_panel, stat_panel

UID = "yiwang-services"
RATE = "$__rate_interval"


def _query(expr: str, legend: str = "", ref_id: str = "A") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref_id)
    return query.legend_format(legend) if legend else query


def _series(title: str, unit: str, *queries: prometheus.Dataquery, span: int = 8) -> timeseries.Panel:
    panel = series_panel(title, unit, span=span).datasource(prometheus_datasource())
    for query in queries:
        panel.with_target(query)
    return panel


def _stat(title: str, unit: str, expr: str) -> stat.Panel:
    return stat_panel(title, unit).datasource(prometheus_datasource()).with_target(_query(expr))


def _quantile(metric: str, by: str = "") -> str:
    keys = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.99, sum by ({keys}) (rate({metric}_bucket[{RATE}])))"


def _ingest(board: dashboard.Dashboard) -> None:
    board.with_row(dashboard.Row("Ingest 数据接入"))
    board.with_panel(_stat("Readings / s", "reqps", f"sum(rate(yiwang_ingest_readings_total[{RATE}]))"))
    board.with_panel(_stat("Queue depth", "short", "sum(yiwang_ingest_queue_depth)"))
    board.with_panel(_stat("Spool points", "short", "sum(yiwang_ingest_spool_points)"))
    board.with_panel(_stat("Deferred", "short", "sum(yiwang_ingest_deferred_depth)"))
    board.with_panel(
        _series(
            "Messages, readings and batches / s",
            "reqps",
            _query(f"sum(rate(yiwang_ingest_messages_total[{RATE}]))", "messages", "A"),
            _query(f"sum(rate(yiwang_ingest_readings_total[{RATE}]))", "readings", "B"),
            _query(f"sum(rate(yiwang_ingest_batches_total[{RATE}]))", "batches", "C"),
        )
    )
    board.with_panel(
        _series(
            "Store write latency (p99) and errors",
            "s",
            _query(_quantile("yiwang_ingest_write_seconds"), "p99 write", "A"),
            _query(f"sum(rate(yiwang_ingest_write_errors_total[{RATE}]))", "errors / s", "B"),
        )
    )
    board.with_panel(
        _series(
            "Outage spool",
            "bytes",
            _query("sum(yiwang_ingest_spool_bytes)", "bytes", "A"),
        )
    )
    board.with_panel(
        _series(
            "Dead letters by reason / s",
            "reqps",
            _query(f"sum by (reason) (rate(yiwang_ingest_dead_letters_total[{RATE}]))", "{{reason}}", "A"),
            _query(
                f"sum by (cause) (rate(yiwang_ingest_dead_letters_discarded_total[{RATE}]))",
                "discarded: {{cause}}",
                "B",
            ),
        )
    )
    board.with_panel(
        _series(
            "Loss and redelivery by gateway",
            "short",
            _query("sum by (gateway) (yiwang_ingest_seq_gaps)", "gaps {{gateway}}", "A"),
            _query(
                f"sum by (gateway) (rate(yiwang_ingest_duplicate_messages_total[{RATE}]))",
                "duplicates/s {{gateway}}",
                "B",
            ),
            _query(
                f"sum by (gateway) (increase(yiwang_ingest_seq_resets_total[{RATE}]))",
                "resets {{gateway}}",
                "C",
            ),
        )
    )
    board.with_panel(
        _series(
            "Deferred messages by gateway / s",
            "reqps",
            _query(f"sum by (gateway) (rate(yiwang_ingest_deferred_messages_total[{RATE}]))", "{{gateway}}"),
        )
    )


def _api(board: dashboard.Dashboard) -> None:
    board.with_row(dashboard.Row("API 接口"))
    board.with_panel(
        _series(
            "Requests / s by status",
            "reqps",
            _query(f"sum by (status) (rate(yiwang_api_requests_total[{RATE}]))", "{{status}}"),
            span=12,
        )
    )
    board.with_panel(
        _series(
            "Latency p99 by route",
            "s",
            _query(_quantile("yiwang_api_request_seconds", "route"), "{{route}}"),
            span=12,
        )
    )


def _edge(board: dashboard.Dashboard) -> None:
    board.with_row(dashboard.Row("Gateways 网关"))
    board.with_panel(
        _series(
            "Spool depth by gateway",
            "short",
            _query("sum by (community, gateway) (yiwang_edge_spool_depth)", "{{community}}/{{gateway}}"),
        )
    )
    board.with_panel(
        _series(
            "Oldest spooled data",
            "s",
            _query("max by (community, gateway) (yiwang_edge_spool_oldest_age_seconds)", "{{gateway}}"),
        )
    )
    board.with_panel(
        _series(
            "Connected, published and dropped",
            "short",
            _query("sum(yiwang_edge_connected)", "connected", "A"),
            _query(f"sum(rate(yiwang_edge_published_messages_total[{RATE}]))", "published/s", "B"),
            _query(
                f"sum by (reason) (rate(yiwang_edge_spool_dropped_total[{RATE}]))", "dropped {{reason}}", "C"
            ),
        )
    )


def build(config_dir: Path) -> dashboard.Dashboard:
    """The services dashboard (``config_dir`` is unused: the metrics are the code's, not the config's)."""
    del config_dir
    board = (
        dashboard.Dashboard("Yiwang · 服务 Services")
        .uid(UID)
        .tags(["yiwang", "services", "prometheus"])
        .description("Ingest, API and gateway agents from their Prometheus metrics")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
    )
    _ingest(board)
    _api(board)
    _edge(board)
    return board
