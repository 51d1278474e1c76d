"""`yiwang bench` prints one JSON object with its ceiling (the figures themselves live in BENCHMARKS.md)."""

import json
import subprocess
import sys

import pytest

from tests.platform import CONFIG_DIR

pytestmark = pytest.mark.e2e


def bench(area: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``yiwang bench AREA --json ARGS`` on the demo config, with the system's binaries on PATH."""
    return subprocess.run(
        [sys.executable, "-m", "yiwang", "bench", area, "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"YIWANG_CONFIG_DIR": str(CONFIG_DIR), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )


def test_case_latency_bench_prints_one_json_object() -> None:
    result = bench("case-latency", "--trials", "2", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["area"] == "case-latency" and report["transitions"] == 4
    assert report["broker"] == "mosquitto"
    assert report["ceiling_broker_delivery_ms"]["p50"] > 0 and report["latency_ms"]["p50"] > 0
    assert report["ceiling_to_latency_p50"] == pytest.approx(
        report["ceiling_broker_delivery_ms"]["p50"] / report["latency_ms"]["p50"], abs=1e-3
    )


@pytest.mark.parametrize("replicas", ["1", "2"])  # 2: a shared subscription per phase
def test_ingest_bench_counts_every_reading_back_and_says_where_the_cpu_went(replicas: str) -> None:
    result = bench("ingest", "--seconds", "1", "--rounds", "2", "--replicas", replicas, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["area"] == "ingest" and report["lost"] == 0
    for phase in ("batched", "single"):
        assert report[phase]["stored_readings"] == report[phase]["published_readings"] > 0
        assert report[phase]["dead_letters"] == 0
        assert set(report[phase]["cpu_us_per_reading"]) == {"influxd", "broker", "ingest", "publisher"}
        assert report[phase]["cpu_us_per_reading"]["ingest"] > 0
    # Two batched rounds between three ceilings; the round with the (upper) median ratio is reported.
    ceilings, rounds = report["ceiling_runs_points_per_s"], report["batched_rounds"]
    assert len(ceilings) == 3 and len(rounds) == 2
    for n, one in enumerate(rounds):
        assert one["lost"] == 0
        assert one["ceiling_points_per_s"] == pytest.approx((ceilings[n] + ceilings[n + 1]) / 2, abs=1)
    assert report["ratio"] == max(one["ratio"] for one in rounds)
    assert report["ratio"] == pytest.approx(
        report["readings_per_s"] / report["ceiling_points_per_s"], abs=1e-3
    )
    assert report["single_reading_msgs_per_s"] > 0 and report["naive_readings_per_s"] > 0
    assert "kept_for_inspection" not in report


def test_unknown_area_is_a_clear_error() -> None:
    result = bench("telepathy", timeout=60)
    assert result.returncode != 0
    assert "unknown area 'telepathy'" in result.stderr
