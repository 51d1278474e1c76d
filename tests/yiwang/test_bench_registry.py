"""`yiwang bench registry` at a small scale: the figures come from a real PostgreSQL and API process."""

from __future__ import annotations

from pathlib import Path

import pytest

from yiwang.bench import registry as registry_bench

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.integration
def test_the_registry_bench_measures_a_reload_the_catalog_and_the_pages() -> None:
    result = registry_bench.run(CONFIG, communities=3, devices_per_community=40, trials=2, requests=3)
    assert (result["store"], result["devices"]) == ("postgresql", 120)
    assert 0 < result["reload_p50_ms"] <= result["reload_ms"] < 30_000  # a poll of 1 s, and then some
    assert result["catalog_mb"] > 0 and result["catalog_load_ms"] > 0 and result["engine_index_ms"] > 0
    assert result["map_features"] >= 3 * 10 + 40  # the community's grids, buildings and devices
    for key in ("device_record_p99_ms", "map_p99_ms", "device_page_p99_ms"):
        assert result[key] > 0, key
