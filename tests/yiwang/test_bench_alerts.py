"""The alerts benchmark end to end at a small scale: the real alerts service, a real Mosquitto."""

from __future__ import annotations

from pathlib import Path

import pytest

from yiwang.bench import alerts as alerts_bench
from yiwang.bench.alert_scenario import KINDS, Plan

CONFIG = Path(__file__).resolve().parents[2] / "config"
TINY = Plan(
    gateways=1,
    water_per_gateway=8,
    gas_per_gateway=5,
    cameras_per_gateway=1,
    hz=2.0,
    per_kind=2,
    warmup_s=25.0,
    spread_s=10.0,
    tail_s=5.0,
    rate_window_s=30.0,
    mad_window_s=20.0,
    anomaly_for_s=4.0,
)


@pytest.mark.integration
def test_the_bench_reports_every_injection_as_detected_or_missed() -> None:
    result = alerts_bench.run(CONFIG, plan=TINY)

    for key in (
        "background_readings_per_s",
        "p50_ms",
        "p99_ms",
        "injected",
        "detected",
        "missed",
        "false_alerts",
        "by_rule_kind",
        "ceiling_p50_ms",
    ):
        assert key in result, key
    assert result["injected"] == len(KINDS) * TINY.per_kind
    assert result["injected"] == result["detected"] + result["missed"]
    assert set(result["by_rule_kind"]) == set(KINDS)
    for kind, row in result["by_rule_kind"].items():
        assert set(row) >= {"injected", "detected", "missed", "false_alerts", "p99_ms"}, kind
        assert row["injected"] == TINY.per_kind == row["detected"] + row["missed"], kind
    assert sum(row["false_alerts"] for row in result["by_rule_kind"].values()) == result["false_alerts"]
    assert result["background_readings_per_s"] > 0
    assert result["ceiling_p50_ms"] is not None
    # The checkpoint figures come from the engine's real state after the windows filled.
    assert result["checkpoint_mb"] > 0
    for way in ("checkpoint_one_call", "checkpoint_in_pieces"):
        assert result[way]["encode_ms"] >= 0 and result[way]["longest_stall_ms"] > 0, way
