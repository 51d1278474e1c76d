"""`yiwang types add`, `yiwang rules apply`, `yiwang reload` and SIGHUP to a running service (#28):
config/ and single files read into the definitions store, checked completely, versioned, audited; a
refused change stores nothing."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.audit import audit_log
from common.db import make_engine
from registry import definitions
from tests.platform import Service, wait_for
from yiwang.cli import app
from yiwang.servers import MosquittoServer, unique_name

CONFIG = Path(__file__).resolve().parents[2] / "config"
CO2 = """\
id: air.co2@1
name: CO2 sensor
fields:
  co2_ppm: {type: float, unit: ppm, min: 0, max: 10000}
protocol:
  kind: modbus
  fields:
    co2_ppm: {function: input, address: 0, data_type: uint16}
"""
CO2_RULE = """\
id: co2-high
version: 1
scope: {type: air.co2@1}
threshold: {field: co2_ppm, op: ">=", value: 2000}
severity: warning
category: gas_leak
"""


@pytest.fixture
def setup(tmp_path: Path, database_url: str) -> tuple[dict[str, str], Path]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    return {"YIWANG_DATABASE_URL": database_url, "YIWANG_CONFIG_DIR": str(config)}, config


def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def stored(env: dict[str, str]) -> tuple[set[str], dict[str, int]]:
    db = make_engine(env["YIWANG_DATABASE_URL"])
    definitions.create_schema(db)
    try:
        profiles = {s.profile.id for s in definitions.stored_profiles(db)}
        return profiles, {f.name: f.version for f in definitions.rule_files(db)}
    finally:
        db.dispose()


def audit_paths(env: dict[str, str]) -> list[tuple[str, str]]:
    db = make_engine(env["YIWANG_DATABASE_URL"])
    try:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(select(audit_log.c.method, audit_log.c.path))]
    finally:
        db.dispose()


def test_types_add_and_rules_apply(setup: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _config = setup
    profile = tmp_path / "co2.yaml"
    profile.write_text(CO2, encoding="utf-8")
    code, out = cli(env, "types", "add", str(profile))
    assert code == 0 and "air.co2@1 stored" in out, out
    profiles, _files = stored(env)
    assert {"air.co2@1", "env.th@1"} <= profiles  # config/'s types seeded first
    assert cli(env, "types", "add", str(profile))[1].strip().endswith("already stored with this content")
    changed = tmp_path / "co2-changed.yaml"
    changed.write_text(CO2.replace("max: 10000", "max: 5000"), encoding="utf-8")
    code, out = cli(env, "types", "add", str(changed))
    assert code == 2 and "give the changed profile id air.co2@2" in out, out
    overlap = tmp_path / "overlap.yaml"
    overlap.write_text(
        CO2.replace("fields:\n  co2_ppm", "fields:\n  temp: {type: float}\n  co2_ppm").replace(
            "data_type: uint16}", "data_type: float32}\n    temp: {function: input, address: 1}"
        ),
        encoding="utf-8",
    )
    code, out = cli(env, "types", "add", str(overlap))
    assert code == 2 and f"{overlap}: protocol.modbus" in out and "overlap at input register 1" in out, out

    one = tmp_path / "co2-rule.yaml"
    one.write_text(CO2_RULE, encoding="utf-8")
    code, out = cli(env, "rules", "apply", str(one))
    assert code == 0 and "rule file cli version 1 stored (co2-high)" in out, out
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(CO2_RULE.replace("field: co2_ppm", "field: co2"), encoding="utf-8")
    code, out = cli(env, "rules", "apply", str(wrong))
    assert code == 2 and f"{wrong}: threshold.field: 'co2' is not a field of air.co2@1" in out, out
    _profiles, files = stored(env)
    assert files["cli"] == 1 and "community-safety" in files  # config/'s rules seeded, the bad one not stored
    assert ("CLI", f"yiwang types add {profile} (air.co2@1)") in audit_paths(env)
    assert ("CLI", f"yiwang rules apply {one} (rule file cli version 1)") in audit_paths(env)


def test_reload_reads_config_into_the_store_or_refuses_it_whole(setup: tuple[dict[str, str], Path]) -> None:
    env, config = setup
    code, out = cli(env, "reload")
    assert code == 0, out
    _profiles, before = stored(env)
    (config / "sensor-types" / "air.co2.yaml").write_text(CO2, encoding="utf-8")
    safety = config / "rules" / "community-safety.yaml"
    safety.write_text(
        safety.read_text(encoding="utf-8")
        .replace("id: gas-lel-high\n    version: 1", "id: gas-lel-high\n    version: 2")
        .replace("value: 20, clear: 10", "value: 25, clear: 10"),
        encoding="utf-8",
    )
    code, out = cli(env, "reload")
    assert (
        code == 0 and "1 sensor type(s) added (air.co2@1), 1 rule file(s) changed (community-safety)" in out
    )
    profiles, after = stored(env)
    assert "air.co2@1" in profiles and after["community-safety"] == before["community-safety"] + 1
    # A rule changed without a new version, and a stored type changed in place: refused, nothing stored.
    safety.write_text(safety.read_text(encoding="utf-8").replace("value: 25", "value: 30"), encoding="utf-8")
    code, out = cli(env, "reload")
    assert code == 2 and "gas-lel-high changed but is still version 2; give it version 3" in out, out
    assert stored(env) == (profiles, after)


@pytest.mark.integration
def test_sighup_to_a_running_service_reloads_config(
    setup: tuple[dict[str, str], Path], tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    env, config = setup
    env = env | {
        "YIWANG_MQTT_PORT": str(mosquitto.port),
        "YIWANG_ALERTS_CLIENT_ID": unique_name("alerts"),
        "YIWANG_SERIES_URL": f"sqlite:///{tmp_path}/series.db",
    }
    alerts = Service(["alerts"], env, tmp_path, tmp_path / "alerts.log").start()
    try:
        wait_for(
            lambda: stored(env)[1].get("community-safety"), 60, f"alerts seeding; log:\n{alerts.log()}", 0.5
        )
        (config / "sensor-types" / "air.co2.yaml").write_text(CO2, encoding="utf-8")
        (config / "rules" / "co2.yaml").write_text(
            "rules:\n  - " + CO2_RULE.replace("\n", "\n    ").rstrip() + "\n", encoding="utf-8"
        )
        assert alerts.proc is not None
        alerts.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: stored(env)[1].get("co2"), 10, f"the SIGHUP reload; log:\n{alerts.log()}", 0.3)
        assert "air.co2@1" in stored(env)[0]
        wait_for(
            lambda: "alerts: " in alerts.log() and "rules running" in alerts.log(), 10, "the new rules", 0.3
        )
        assert alerts.proc.poll() is None  # still running
    finally:
        alerts.stop()
