"""Grafana dashboards as code (Grafana Foundation SDK), one module per dashboard.

``build_all`` gives each dashboard's JSON as it is committed under ``deploy/grafana/dashboards/``;
``yiwang dashboards build`` writes them, and the dashboards' test rebuilds and compares them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from yiwang.dashboards import services, telemetry

# File name → the module's builder, which reads what it needs from the configuration directory.
DASHBOARDS: dict[str, Callable[[Path], Dashboard]] = {
    "telemetry.json": telemetry.build,
    "services.json": services.build,
}


def render(board: Dashboard) -> str:
    """Stable JSON (sorted keys, two-space indent, trailing newline): a rebuild changes no byte."""
    plain = json.loads(JSONEncoder().encode(board.build()))
    # The SDK leaves every panel's id 0; Grafana keys panel links and edits by id, so number them.
    for number, panel in enumerate(plain.get("panels") or [], start=1):
        panel["id"] = number
    return json.dumps(plain, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def build_all(config_dir: Path) -> dict[str, str]:
    return {name: render(build(config_dir)) for name, build in DASHBOARDS.items()}
