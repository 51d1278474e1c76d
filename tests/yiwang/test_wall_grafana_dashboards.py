"""The Grafana dashboards (yiwang/dashboards/, issue #24 item 5): built from code, committed as built,
and every panel reads a datasource the provisioning creates and a series the code really writes.

There is no Grafana on the build machine (Debian 12 has no package), so the validation is structural:
datasource uids against deploy/grafana/provisioning, InfluxQL measurements and fields against what
ingest's decoder produces for the pilot's devices, PromQL metric names against the registries that
ingest, the API and the edge agent export, and the compose service against the files it mounts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from api.metrics import MetricsSettings, install_metrics
from contract import Topic
from contract.catalog import Catalog, Community, load_catalog, load_sensor_types
from contract.profiles import SensorTypeProfile
from edge.metrics import EdgeMetrics
from ingest.metrics import IngestMetrics
from ingest.validate import EVENT_MEASUREMENT, decode_events, decode_telemetry
from series.store import Point
from tests.platform import CONFIG_DIR
from yiwang.cli import app
from yiwang.dashboards import DASHBOARDS, build_all
from yiwang.dashboards.datasources import INFLUXDB_UID, PROMETHEUS_UID

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
COMMITTED = GRAFANA / "dashboards"
SELECT = re.compile(r'^SELECT (?:mean|count)\("(?P<field>[^"]+)"\) FROM "(?P<measurement>[^"]+)" WHERE ')
METRIC = re.compile(r"\byiwang_[a-z0-9_]+\b")


def built() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in build_all(CONFIG_DIR).items()}


def provisioned_datasources() -> dict[str, str]:
    """uid → type of every datasource the provisioning creates."""
    found: dict[str, str] = {}
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yaml")):
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
            found[source["uid"]] = source["type"]
    return found


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _sample_value(profile: SensorTypeProfile, field: str) -> float | int:
    spec = profile.fields[field]
    low = spec.normal[0] if spec.normal else (spec.min if spec.min is not None else 1.0)
    return int(low) if spec.type == "int" else float(low)


def every_type_catalog() -> Catalog:
    """The pilot community plus one probe device of every configured sensor type on its first gateway:
    the dashboards cover every type ingest accepts, not only the ones the pilot happens to have."""
    community = yaml.safe_load((CONFIG_DIR / "communities" / "zhuganxiang.yaml").read_text(encoding="utf-8"))
    profiles = load_sensor_types(CONFIG_DIR)
    grid = community["grids"][0]["id"]
    community["gateways"][0]["devices"] += [
        {"id": f"probe-{n:02d}", "type": p.id, "grid": grid} for n, p in enumerate(profiles)
    ]
    return Catalog([Community.model_validate(community)], profiles)


def written_series() -> set[tuple[str, str]]:
    """(measurement, field) of the points ingest's decoder makes from a reading of every numeric field of
    every sensor type."""
    catalog = every_type_catalog()
    [community] = catalog.communities.values()
    gateway = community.gateways[0]
    series: set[tuple[str, str]] = set()
    for device in gateway.devices:
        if not device.id.startswith("probe-"):
            continue
        profile = catalog.profiles[device.type]
        numeric = [f for f, spec in profile.fields.items() if spec.type in ("float", "int")]
        if not numeric:
            continue
        reading = {
            "device": device.id,
            "ts": 1_764_183_600_000,
            "values": {f: _sample_value(profile, f) for f in numeric},
        }
        topic = f"yiwang/v1/{community.id}/{gateway.id}/telemetry"
        decoded = decode_telemetry(topic, json.dumps({"seq": 1, "readings": [reading]}).encode(), catalog)
        for point in decoded.points:
            assert isinstance(point, Point) and "community" in point.tags
            series |= {(point.measurement, f) for f in point.fields}
    return series


def event_series() -> set[tuple[str, str]]:
    """(measurement, field) of the point ingest makes of a camera event of the pilot."""
    catalog = load_catalog(CONFIG_DIR)
    for community in catalog.communities.values():
        for gateway in community.gateways:
            for device in gateway.devices:
                if device.type.startswith("camera.events"):
                    topic = f"yiwang/v1/{community.id}/{gateway.id}/event"
                    event = {
                        "device": device.id,
                        "ts": 1_764_183_600_000,
                        "id": "0b7e2d4e-5c1a-4d8e-9a43-2f7f1c3f9a10",
                        "kind": "camera.motion",
                        "phase": "start",
                        "attrs": {},
                    }
                    payload = json.dumps({"seq": 1, "events": [event]}).encode()
                    decoded = decode_events(Topic.parse(topic), payload, catalog)
                    points = [p for p in decoded.points if isinstance(p, Point) and "kind" in p.tags]
                    assert points
                    return {(p.measurement, f) for p in points for f in p.fields}
    raise AssertionError("the pilot has no camera: the events panel cannot be checked")


def exported_metrics() -> set[str]:
    """Every sample name ingest, the API and the edge agent expose (counter x: x_total; histogram x:
    x_bucket, x_sum, x_count)."""
    families: list[tuple[str, str]] = []
    registries: list[CollectorRegistry] = [IngestMetrics().registry, EdgeMetrics().registry]
    for registry in registries:
        families += [(family.name, family.type) for family in registry.collect()]
    api = FastAPI()
    install_metrics(api, MetricsSettings(metrics_token=None))
    with TestClient(api) as client:
        text = client.get("/metrics/").text
    families += [(family.name, family.type) for family in text_string_to_metric_families(text)]
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    names = {name + suffix for name, kind in families for suffix in suffixes.get(kind, ("",))}
    assert any(n.startswith("yiwang_api_") for n in names) and any(
        n.startswith("yiwang_edge_") for n in names
    )
    return names


def test_the_committed_dashboards_are_a_fresh_build_and_the_cli_writes_and_checks_them(
    tmp_path: Path,
) -> None:
    fresh = build_all(CONFIG_DIR)
    assert set(fresh) == set(DASHBOARDS) == {p.name for p in COMMITTED.glob("*.json")}
    for name, text in fresh.items():
        assert (COMMITTED / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: yiwang dashboards build"
        )
    runner = CliRunner()
    config = ["--config-dir", str(CONFIG_DIR)]
    assert (
        runner.invoke(app, ["dashboards", "build", "--check", "--out", str(COMMITTED), *config]).exit_code
        == 0
    )
    out = tmp_path / "boards"
    wrote = runner.invoke(app, ["dashboards", "build", "--out", str(out), *config])
    assert wrote.exit_code == 0, wrote.output
    assert {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.json")} == fresh
    (out / "services.json").write_text("{}", encoding="utf-8")
    stale = runner.invoke(app, ["dashboards", "build", "--check", "--out", str(out), *config])
    assert stale.exit_code == 1 and "services.json" in stale.output
    missing = runner.invoke(app, ["dashboards", "build", "--config-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "sensor-types" in missing.output


def test_every_panel_reads_a_provisioned_datasource_and_the_layout_holds() -> None:
    sources = provisioned_datasources()
    assert sources == {INFLUXDB_UID: "influxdb", PROMETHEUS_UID: "prometheus"}
    for name, board in built().items():
        assert board["uid"] and board["title"] and board["editable"] is False
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and 0 not in ids, name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            area = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
            assert not cells & area, f"{name}: {panel['title']} overlaps another panel"
            cells |= area
        for panel in panels(board):
            source = panel["datasource"]
            assert sources.get(source["uid"]) == source["type"], (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target.get("datasource", source) == source, (name, panel["title"])
        for variable in board.get("templating", {}).get("list", []):
            assert sources.get(variable["datasource"]["uid"]) == variable["datasource"]["type"]


def test_every_influxql_query_reads_a_series_ingest_writes() -> None:
    telemetry = built()["telemetry.json"]
    numeric = written_series()
    writes = numeric | event_series()
    assert (EVENT_MEASUREMENT, "phase") in writes
    queried: set[tuple[str, str]] = set()
    for panel in panels(telemetry):
        for target in panel["targets"]:
            query = target["query"]
            match = SELECT.match(query)
            assert match, query
            queried.add((match["measurement"], match["field"]))
            assert "$timeFilter" in query and "GROUP BY time($__interval)" in query, query
    # Every panel's series is written by ingest, and every numeric field of every type has a panel.
    assert queried <= writes, queried - writes
    assert numeric <= queried, numeric - queried
    assert (EVENT_MEASUREMENT, "phase") in queried


def test_every_promql_query_names_a_metric_the_services_export() -> None:
    services = built()["services.json"]
    exported = exported_metrics()
    named: set[str] = set()
    for panel in panels(services):
        for target in panel["targets"]:
            found = set(METRIC.findall(target["expr"]))
            assert found, target["expr"]
            named |= found
    assert named <= exported, named - exported
    for prefix in ("yiwang_ingest_", "yiwang_api_", "yiwang_edge_"):
        assert any(n.startswith(prefix) for n in named), prefix


def test_the_compose_service_mounts_what_the_provisioning_reads() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    grafana = compose["services"]["grafana"]
    mounts = {m["target"]: m for m in grafana["volumes"]}
    provisioning = mounts["/etc/grafana/provisioning"]
    assert (ROOT / provisioning["source"]).resolve() == (GRAFANA / "provisioning").resolve()
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "yiwang.yaml").read_text())[
        "providers"
    ]
    [provider] = providers
    board_mount = mounts[provider["options"]["path"]]
    assert (ROOT / board_mount["source"]).resolve() == COMMITTED.resolve()
    assert provisioning["read_only"] and board_mount["read_only"]
    # The variables the datasource provisioning expands are in the container's environment.
    text = (GRAFANA / "provisioning" / "datasources" / "yiwang.yaml").read_text(encoding="utf-8")
    wanted = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert wanted == {"INFLUXDB_BUCKET", "INFLUXDB_TOKEN"}
    assert wanted <= set(grafana["environment"])
    assert grafana["depends_on"]["influxdb"]["condition"] == "service_healthy"
