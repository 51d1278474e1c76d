"""`yiwang bench edge`'s recovery and CPU figures: the accounting catches a lost reading, and one short
real run of each gives figures that are present and plausible (tests never assert the timings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from yiwang.bench.edge import DEVICES
from yiwang.bench.edge_recovery import (
    Recorder,
    cpu_figures,
    device_ids,
    median_period_ms,
    missing_readings,
    missing_seqs,
    p99,
    recovery_figures,
    recovery_from,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = 1_764_183_600_000
HALT, BACK = T0 + 10_000, T0 + 20_000  # a 10 s outage in a 30 s run polled every second


def run_of(seconds: int = 30, period_ms: int = 1000, jitter_ms: int = 0) -> set[tuple[str, int]]:
    return {
        (device, T0 + s * period_ms + (jitter_ms if s % 2 else 0) + d)
        for d, device in enumerate(device_ids())
        for s in range(seconds)
    }


def test_a_complete_run_misses_nothing_even_with_a_slow_jittery_cycle() -> None:
    received = run_of(period_ms=1030, jitter_ms=200)
    assert 1000 <= median_period_ms(received) <= 1300
    assert missing_readings(received, device_ids(), HALT, BACK, median_period_ms(received)) == {}


def test_one_reading_lost_in_the_outage_is_counted() -> None:
    received = run_of() - {("env-07", T0 + 15_000 + 6)}
    assert missing_readings(received, device_ids(), HALT, BACK, 1000) == {"env-07": 1}


def test_readings_lost_at_the_edges_of_the_outage_are_counted() -> None:
    # The first readings of the outage of one device, and everything after the halt of another.
    received = run_of() - {("env-01", T0 + s * 1000) for s in (10, 11)}
    received -= {("env-02", T0 + s * 1000 + 1) for s in range(11, 30)}
    assert missing_readings(received, device_ids(), HALT, BACK, 1000) == {"env-01": 2, "env-02": 10}
    silent = {k for k in run_of() if k[0] != "env-03"}
    assert missing_readings(silent, device_ids(), HALT, BACK, 1000)["env-03"] == 11


def test_lost_messages_and_p99() -> None:
    assert missing_seqs({3, 4, 6}, 7) == [5, 7]
    assert missing_seqs(set(), 2) == [1, 2]
    assert p99([]) is None
    assert p99([float(v) for v in range(1, 101)]) == 100


def recorded(lose: frozenset[tuple[str, int]] = frozenset(), lose_seq: int | None = None) -> Recorder:
    """What a subscriber saw: readings arrive 50 ms after they are taken, the backlog 2 s after BACK."""
    recorder = Recorder()
    for device, ts in run_of() - lose:
        arrival = BACK + 2_000 if HALT <= ts <= BACK else max(ts, BACK + 1_500) + 50
        recorder.arrivals[(device, ts)] = arrival
    recorder.seqs = set(range(1, 41)) - {lose_seq}
    recorder.online_states = [T0, BACK + 1_500]
    return recorder


def test_the_recovery_figures_catch_a_lost_reading_and_a_lost_message() -> None:
    clean = recovery_from(recorded(), HALT, BACK, last_seq=40, dropped=0, outage_s=10)
    assert clean["outage_readings_lost"] == 0 and clean["outage_seq_gaps"] == 0
    assert clean["reconnect_connack_s"] == 1.5
    assert clean["backlog_drain_s"] == 2.0
    lost = recovery_from(recorded(frozenset({("env-12", T0 + 14_000 + 11)}), 17), HALT, BACK, 40, 0, 10)
    assert lost["outage_readings_lost"] == 1
    assert lost["outage_seq_gaps"] == 1
    given_up = recovery_from(recorded(), HALT, BACK, last_seq=40, dropped=3, outage_s=10)
    assert given_up["outage_readings_lost"] == 3, "readings the spool gave up count as lost"


@pytest.mark.integration
def test_a_short_outage_under_a_real_agent() -> None:
    figures = recovery_figures(CONFIG, outage_s=5)
    assert figures["outage_readings_lost"] == 0
    assert figures["outage_seq_gaps"] == 0
    assert figures["outage_readings"] >= DEVICES * 3, "about one reading per device per second offline"
    assert 0 < figures["reconnect_connack_s"] <= figures["reconnect_s"] <= figures["backlog_drain_s"]
    assert figures["live_readings_during_drain"] > 0
    assert figures["live_delay_during_drain_ms_p99"] > 0


@pytest.mark.integration
def test_cpu_of_the_agent_with_and_without_a_camera() -> None:
    figures = cpu_figures(CONFIG, seconds=5)
    assert 0 < figures["cpu_s_per_min"] < figures["cpu_s_per_min_with_camera"]
    assert figures["readings_per_device_per_s"] > 0.5
    assert figures["readings_per_device_per_s_with_camera"] > 0.5
    assert figures["camera_fps"] > 0
