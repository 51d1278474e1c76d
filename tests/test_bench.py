"""`yiwang bench` prints one JSON object with its ceiling (the figures themselves live in BENCHMARKS.md)."""

import json
import subprocess
import sys

import pytest

from tests.platform import CONFIG_DIR

pytestmark = pytest.mark.e2e


def test_case_latency_bench_prints_one_json_object() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yiwang", "bench", "case-latency", "--json", "--trials", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"YIWANG_CONFIG_DIR": str(CONFIG_DIR), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["area"] == "case-latency" and report["transitions"] == 4
    assert report["broker"] == "mosquitto"
    assert report["ceiling_broker_delivery_ms"]["p50"] > 0 and report["latency_ms"]["p50"] > 0
    assert report["ceiling_to_latency_p50"] == pytest.approx(
        report["ceiling_broker_delivery_ms"]["p50"] / report["latency_ms"]["p50"], abs=1e-3
    )


def test_unknown_area_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yiwang", "bench", "telepathy", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown area 'telepathy'" in result.stderr
