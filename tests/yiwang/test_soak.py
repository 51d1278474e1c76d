"""`yiwang bench soak`: the growth criterion on synthetic series, the PNGs, and one short real run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.platform import CONFIG_DIR
from yiwang.bench.soak import SERIES, judge
from yiwang.bench.soakplot import plot
from yiwang.bench.trend import LATENCY, MEMORY, QUEUE, trend

# A soak's second half: 15 minutes sampled every 10 s.
TIMES = [900 + 10 * i for i in range(91)]


def _noisy(base: float, per_s: float, noise: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [base + per_s * (t - TIMES[0]) + rng.gauss(0, noise) for t in TIMES]


def test_flat_noisy_memory_is_no_trend() -> None:
    for seed in range(20):
        found = trend(TIMES, _noisy(100.0, 0.0, 2.0, seed), MEMORY)
        assert not found.growth, (seed, found)


def test_a_leak_of_one_mb_per_minute_is_a_trend() -> None:
    for base in (50.0, 100.0, 600.0):
        found = trend(TIMES, _noisy(base, 1 / 60, 2.0), MEMORY)
        assert found.growth, (base, found)
        assert found.slope_per_h == pytest.approx(60, rel=0.15)
        assert found.pct_of_mean_per_h == pytest.approx(found.slope_per_h / found.mean * 100)


def test_an_allocator_step_on_a_short_window_is_no_trend() -> None:
    # 30 s of samples with one 3 MB step: 360 MB/h extrapolated, but it rose 3 MB, not a leak.
    times = [float(t) for t in range(0, 32, 2)]
    values = [100.0 if t < 16 else 103.0 for t in times]
    assert not trend(times, values, MEMORY).growth


def test_latency_and_queue_criteria() -> None:
    assert not trend(TIMES, _noisy(120.0, 0.0, 40.0), LATENCY).growth
    assert trend(TIMES, _noisy(120.0, 0.5, 40.0), LATENCY).growth  # +30 s/h: a queue building up
    assert not trend(TIMES, [max(0.0, v) for v in _noisy(30.0, 0.0, 40.0)], QUEUE).growth
    assert trend(TIMES, _noisy(30.0, 2.0, 40.0), QUEUE).growth  # 7,200 messages/h


def test_trend_refuses_what_it_cannot_judge() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        trend([0.0, 1.0], [1.0, 2.0], MEMORY)
    with pytest.raises(ValueError, match="2 times but 3 values"):
        trend([0.0, 1.0], [1.0, 2.0, 3.0], MEMORY)


def _samples(leak_mb_per_s: float = 0.0, influxd_mb_per_s: float = 0.0) -> list[dict[str, float | None]]:
    rng = random.Random(3)
    return [
        {
            "t_s": float(t),
            "rss_broker_mb": 40 + rng.gauss(0, 0.5),
            "rss_ingest_mb": 100 + leak_mb_per_s * t + rng.gauss(0, 1),
            "rss_alerts_mb": 110 + rng.gauss(0, 1),
            "rss_influxd_mb": 200 + influxd_mb_per_s * t,
            "store_latency_ms": 80 + rng.gauss(0, 20),
            "case_latency_ms": None if t == 1000 else 130 + rng.gauss(0, 30),
            "ingest_queue_depth": 0.0,
            "broker_stored_messages": 60 + rng.randint(0, 40),
            "alerts_lag_messages": rng.randint(-20, 20),
        }
        for t in range(0, 1810, 10)
    ]


def test_judge_uses_the_second_half_and_only_the_judged_series() -> None:
    trends, growth = judge(_samples(influxd_mb_per_s=0.1), 1800)
    assert not growth  # influxd holds the data: plotted and reported, not judged
    assert trends["rss_influxd_mb"]["growth"] and "rss_influxd_mb" not in SERIES
    assert set(SERIES) <= set(trends)
    trends, growth = judge(_samples(leak_mb_per_s=1 / 60), 1800)
    assert growth and trends["rss_ingest_mb"]["growth"]
    assert trends["rss_ingest_mb"]["slope_per_h"] == pytest.approx(60, rel=0.1)


def test_plots_are_written(tmp_path: Path) -> None:
    paths = plot(_samples()[:5], tmp_path / "plots", rate=12_345, minutes=30)
    assert [p.name for p in paths] == ["memory.png", "latency.png", "queues.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no samples"):
        plot([], tmp_path, rate=1, minutes=1)


@pytest.mark.integration
def test_a_short_soak_loses_nothing_and_reports_its_curves(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yiwang",
            "bench",
            "soak",
            "--json",
            "--minutes",
            "0.3",
            "--plot-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "YIWANG_CONFIG_DIR": str(CONFIG_DIR), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["area"] == "soak" and report["minutes"] == 0.3
    assert report["published"] > 0 and report["lost"] == 0 and report["stored"] == report["published"]
    capacity = report["capacity_readings_per_s"]
    assert capacity == min(report["capacity_ingest_readings_per_s"], report["capacity_alerts_readings_per_s"])
    assert report["rate_readings_per_s"] == pytest.approx(capacity / 2, abs=1)
    assert report["achieved_readings_per_s"] == pytest.approx(report["rate_readings_per_s"], rel=0.2)
    samples = report["samples"]
    assert len(samples) >= 5
    for sample in samples:
        assert sample["rss_broker_mb"] > 0 and sample["rss_ingest_mb"] > 0 and sample["rss_alerts_mb"] > 0
        assert sample["ingest_queue_depth"] is not None and sample["broker_stored_messages"] is not None
    assert all(s["store_latency_ms"] > 0 and s["case_latency_ms"] > 0 for s in samples)
    assert set(report["trend"]) >= set(SERIES)
    assert all({"slope_per_h", "pct_of_mean_per_h"} <= set(t) for t in report["trend"].values())
    assert isinstance(report["growth_trend"], bool)
    assert sorted(Path(p).name for p in report["plots"]) == ["latency.png", "memory.png", "queues.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name in ("memory.png", "latency.png", "queues.png"))
