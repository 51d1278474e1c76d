"""Telemetry by community and device type, from InfluxDB (InfluxQL).

One row per sensor type (its measurement, e.g. ``env.th``), one panel per numeric field, a line per
community (the mean over its devices); a last row counts the gateways' events by kind. The sensor types
come from the configuration ingest validates against, so every panel reads a measurement and a field
ingest really writes (``ingest/validate.py``: measurement = the type without its version, tags
community/gateway/device/grid).
"""

from __future__ import annotations

from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, timeseries
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh, VariableSort

from contract.catalog import load_sensor_types
from contract.profiles import SensorTypeProfile
from yiwang.dashboards.datasources import InfluxQL, influxdb
from yiwang.dashboards.panels import series_panel

UID = "yiwang-telemetry"
EVENT_MEASUREMENT = "events"  # ingest/validate.py writes every gateway event there, its kind a tag
NUMERIC = ("float", "int")
# Grafana's unit ids for the units the profiles use; any other is shown as a suffix.
UNITS = {
    "°C": "celsius",
    "%RH": "humidity",
    "%": "percent",
    "V": "volt",
    "A": "amp",
    "W": "watt",
    "kWh": "kwatth",
}
PER_INTERVAL = "$timeFilter GROUP BY time($__interval)"
COMMUNITY_FILTER = '"community" =~ /^${community:regex}$/'


def grafana_unit(unit: str | None) -> str:
    if not unit:
        return "short"
    return UNITS.get(unit, f"suffix:{unit}")


def field_query(measurement: str, field: str) -> str:
    """The field's mean per community; names come from validated profiles (ids and field names are
    restricted to ``[a-z0-9_.-]``), so quoting them is enough."""
    select = f'SELECT mean("{field}") FROM "{measurement}"'  # noqa: S608 - validated identifiers
    return f'{select} WHERE {COMMUNITY_FILTER} AND {PER_INTERVAL}, "community" fill(none)'


def _field_panel(profile: SensorTypeProfile, field: str) -> timeseries.Panel:
    spec = profile.fields[field]
    title = f"{profile.name_zh or profile.name} · {field}" if profile.name_zh else f"{profile.name} · {field}"
    return (
        series_panel(title, grafana_unit(spec.unit))
        .description(spec.description or f"{profile.id}: mean of {field} per community")
        .datasource(influxdb())
        .with_target(InfluxQL(field_query(profile.measurement, field), alias="$tag_community"))
    )


def _events_panel() -> timeseries.Panel:
    select = f'SELECT count("phase") FROM "{EVENT_MEASUREMENT}"'  # noqa: S608 - a constant
    query = f'{select} WHERE {COMMUNITY_FILTER} AND {PER_INTERVAL}, "kind" fill(0)'
    return (
        series_panel("事件 · Events by kind", "short", span=24)
        .description("Camera and agent events the gateways sent, by kind")
        .datasource(influxdb())
        .with_target(InfluxQL(query, alias="$tag_kind"))
    )


def _community_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("community")
        .label("Community 社区")
        .datasource(influxdb())
        .query('SHOW TAG VALUES WITH KEY = "community"')
        .multi(True)
        .include_all(True)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def build(config_dir: Path) -> dashboard.Dashboard:
    """The telemetry dashboard for the sensor types of ``config_dir``."""
    board = (
        dashboard.Dashboard("Yiwang · 遥测 Telemetry")
        .uid(UID)
        .tags(["yiwang", "telemetry", "influxdb"])
        .description("Sensor readings per community and device type (InfluxDB, InfluxQL)")
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        .with_variable(_community_variable())
    )
    for profile in sorted(load_sensor_types(config_dir), key=lambda p: p.id):
        fields = [name for name, spec in profile.fields.items() if spec.type in NUMERIC]
        if not fields:
            continue
        board.with_row(dashboard.Row(f"{profile.name_zh or profile.name} ({profile.measurement})"))
        for field in fields:
            board.with_panel(_field_panel(profile, field))
    board.with_row(dashboard.Row("事件 Events"))
    board.with_panel(_events_panel())
    return board
