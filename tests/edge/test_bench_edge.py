"""`yiwang bench edge` measures on real emulated hardware; here only its shape and request counts."""

from __future__ import annotations

import pytest

from yiwang.bench.edge import bus_efficiency


@pytest.mark.integration
def test_bus_efficiency_counts_requests_with_and_without_coalescing() -> None:
    result = bus_efficiency(cycles=1)
    # 30 slaves x 4 adjacent registers: one request each when coalesced, four when not.
    assert result["requests_per_cycle"] == 30
    assert result["requests_per_cycle_uncoalesced"] == 120
    assert result["cycle_ms"] > 0 and result["ceiling_wire_ms_per_cycle"] > 0


@pytest.mark.integration
def test_spool_figures_have_their_keys_and_ceilings() -> None:
    from yiwang.bench.edge import spool_figures

    result = spool_figures(readings=20_000)  # small: the shape, not the numbers
    for key in ("spool_write_per_s", "spool_encode_per_s", "drain_per_s", "drain_ceiling_per_s"):
        assert result[key] > 0, key
    assert result["spool_records"] == 20_000
    assert result["bytes_per_reading"] > 0 and result["spool_rss_mb"] > 0
