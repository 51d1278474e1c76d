"""`yiwang chaos run`: the real stack under injected faults loses nothing and counts nothing twice."""

import json
import subprocess
import sys

import pytest

from tests.platform import CONFIG_DIR

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

FIELDS = {"name", "repeats", "sent", "stored", "lost", "duplicates_counted", "cases_expected", "cases_opened"}


def _chaos(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yiwang", "chaos", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"YIWANG_CONFIG_DIR": str(CONFIG_DIR), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )


ALL = [
    "broker-kill",
    "ingest-kill",
    "alerts-kill",
    "influx-down",
    "poison",
    "slow-consumer",
    "postgres-restart",
    "network-cut",
    "power-cut",
    "clock-skew",
]


@pytest.mark.timeout(900)
def test_every_fault_lands_and_loses_nothing() -> None:
    """All ten scenarios at a tenth of their durations, in one run: each fault provably landed (a
    backlog unacknowledged at the ingest kill, half-open links given up by keep-alive, a spool put
    back to its last fsync, ...), and nothing sent was lost — compared by value, a dead-lettered good
    reading counting as lost — nor counted twice in the relational tables."""
    args = [arg for name in ALL for arg in ("--scenario", name)]
    result = _chaos("--scale", "0.1", "--repeats", "1", "--json", *args, timeout=880)
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["scenarios"]] == ALL
    by_name = {s["name"]: s for s in report["scenarios"]}
    for s in report["scenarios"]:
        assert s.keys() >= FIELDS | {"fault_landed", "faults", "mismatched", "lost_unsynced"}, s
        assert s["repeats"] == 1
        assert s["fault_landed"], s  # a fault that did not land proves nothing
        assert s["sent"] > 500, s  # two gateways, ~30 devices, 2 ticks/s for ~25 s
        assert s["lost"] == 0 and s["mismatched"] == 0 and s["dead_lettered"] == 0, s
        assert s["stored"] + s["lost_unsynced"] == s["sent"], s
        assert s["duplicates_counted"] == 0 and s["duplicate_cases"] == 0, s
        assert not s["missing_cases"] and not s["unexpected_cases"], s
        assert s["cases_opened"] == s["cases_expected"], s
        assert s["ok"], s
    assert by_name["ingest-kill"]["faults"][0]["unacknowledged_at_kill"] > 0
    poison = by_name["poison"]
    assert poison["poison_sent"] >= 3 and poison["poison_dead_lettered"] == poison["poison_sent"], poison
    cut = by_name["network-cut"]["faults"][0]
    assert cut["connections_tried_during_cut"] >= 2 and cut["reconnected"] >= 2, cut
    power = by_name["power-cut"]
    assert power["unsynced_ticks"] <= power["unsynced_bound_ticks"], power
    assert power["faults"][0]["cuts"] == 3, power
    # Only a power cut may take anything, and only what was appended after the last fsync.
    assert all(s["lost_unsynced"] == 0 for s in report["scenarios"] if s["name"] != "power-cut")


@pytest.mark.timeout(600)
def test_a_flood_gets_through_a_flapping_link_and_planned_restarts() -> None:
    """A gateway's link cut and restored 10 times: each last will still raises gateway-offline, yet
    the gateway's first reading after each reconnect is judged uninhibited and a flood opens its case.
    The stack stopped cleanly and started 3 times: no device_offline case, and the flood after each
    start fires uninhibited into a case (joined: one flooding case, three firings)."""
    scenarios = ["flaky-link", "stack-restart"]
    args = [arg for name in scenarios for arg in ("--scenario", name)]
    result = _chaos("--scale", "0.05", "--repeats", "1", "--json", *args, timeout=590)
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    flaky, restart = report["scenarios"]
    for s in (flaky, restart):
        assert s.keys() >= FIELDS | {"flood_latency_ms", "seeds", "checks"}, s
        assert s["lost"] == 0 and s["stored"] + s["dead_lettered"] == s["sent"], s
        assert s["duplicates_counted"] == 0 and s["duplicate_cases"] == 0, s
        assert not s["missing_cases"] and not s["unexpected_cases"], s
    # Timings are reported (flood_latency_ms), not asserted; what the system recorded is.
    assert flaky["checks"]["flood_opened_case"] and flaky["checks"]["flood_not_inhibited_at_its_reading"], (
        flaky
    )
    assert flaky["inhibition_end_ms"]["n"] == 10 and flaky["inhibition_end_ms"]["p99"] == 0, flaky
    assert "g-north/device_offline" not in flaky["missing_cases"]  # a last will is still an outage
    run = restart["runs"][0]
    assert run["device_offline_cases"] == 0, restart
    assert run["flood_firings"] == 3 and run["flooding_cases"] == 1, restart
    assert restart["checks"]["floods_not_inhibited_at_their_reading"], restart


def test_alarm_timings_see_an_inhibited_reading_and_a_case_never_opened() -> None:
    """The alarm scenarios' figures are not vacuous: a first reading judged inhibited counts until
    the first uninhibited firing, one never freed is missing, and a muted flood opened no case."""
    from yiwang.chaos.alarm_timing import (
        Firing,
        flood_latencies,
        inhibition_ends,
        muted_at_reading,
        percentiles,
    )

    sentinel = [
        Firing(1_000, False, 7),
        Firing(5_100, True, 7),
        Firing(5_900, False, 7),
        Firing(9_500, True, 7),
    ]
    ends = inhibition_ends(sentinel, [900, 5_000, 9_000])
    assert ends == [0, 800, None]
    assert percentiles(ends) == {"p50": 0, "p99": 800, "n": 2, "missing": 1}
    flood = [Firing(20_040, True, None), Firing(20_950, False, 3)]
    assert flood_latencies(flood, [20_000]) == [950] and muted_at_reading(flood, [20_000]) == [True]
    assert flood_latencies(flood[:1], [20_000]) == [None]


def test_unknown_scenario_is_a_clear_error() -> None:
    result = _chaos("--scenario", "meteor-strike", "--json", timeout=60)
    assert result.returncode == 2
    assert "unknown scenario(s) meteor-strike" in result.stderr


def test_accounting_sees_a_lost_point_and_a_double_count() -> None:
    """The figures above are not vacuous: a point removed from InfluxDB is lost, and so are a point
    stored with another value and a good reading that was dead-lettered; a firing recorded twice and
    a message dead-lettered twice are duplicates."""
    import datetime as dt

    import httpx
    from sqlalchemy import text

    from common.db import make_engine
    from contract.catalog import load_catalog
    from yiwang.chaos.accounting import _influx, settled, stored_points, tally
    from yiwang.chaos.harness import INFLUX_DB, running_harness
    from yiwang.chaos.processes import wait_until
    from yiwang.chaos.run import flood_devices

    floods = flood_devices(load_catalog(CONFIG_DIR))
    expected = {(grid, "flooding") for _, grid in floods.values()}
    with running_harness(CONFIG_DIR, floods={gw: d for gw, (d, _) in floods.items()}, flood_at_s=2) as h:
        wait_until(lambda: h.tick_at(0) > 30, 60, "15 s of production")
        for run in h.gateways.values():
            run.plan.stop_file.touch()
        wait_until(lambda: all(r.drained() for r in h.gateways.values()), 60, "the gateways to drain")
        wait_until(lambda: settled(h, expected), 60, "the stack to settle", 1.0)
        clean = tally(h, expected)
        assert clean.ok() and clean.lost == 0 and clean.stored == clean.sent, clean
        _influx(h, "DELETE FROM \"env.th\" WHERE device = 'th-0101'")
        key, point = next((k, p) for k, p in stored_points(h).items() if k[:2] == ("T", "th-0102"))
        tags = ",".join(f"{t}={point[t]}" for t in ("community", "gateway", "grid"))
        changed = f"env.th,device=th-0102,{tags} temperature={point['temperature'] + 0.5} {key[2]}"
        httpx.post(
            f"{h.influx_url}/write", params={"db": INFLUX_DB, "precision": "ms"}, content=changed
        ).raise_for_status()
        letter = json.dumps({"seq": 1, "readings": [{"device": "th-0101", "ts": key[2], "values": {}}]})
        db = make_engine(h.postgres.url)
        with db.begin() as conn:
            for _ in range(2):  # one message dead-lettered twice
                conn.execute(
                    text(
                        "INSERT INTO ingest_dead_letters (received_at, topic, reason, payload)"
                        " VALUES (:at, 'yiwang/v1/zhuganxiang/gw-01/telemetry', 'test', :payload)"
                    ),
                    {"at": dt.datetime.now(dt.UTC), "payload": letter.encode()},
                )
            conn.execute(
                text(
                    "INSERT INTO alert_history (fingerprint, rule_id, rule_version, kind, at, observed_at,"
                    " case_id, opened_case, self_recovered, silenced, inhibited)"
                    " SELECT fingerprint, rule_id, rule_version, kind, at, observed_at, case_id, opened_case,"
                    " self_recovered, silenced, inhibited FROM alert_history WHERE kind = 'firing' LIMIT 1"
                )
            )
        db.dispose()
        tampered = tally(h, expected)
        gw01 = h.gateways["gw-01"].plan.log.read_text(encoding="utf-8")
    # th-0101 (gw-01) reported once per tick, all deleted; th-0102's point changed.
    assert tampered.lost == gw01.count("T ") + 1 and tampered.mismatched == 1, tampered
    assert tampered.dead_lettered == 1, tampered  # th-0101's reading, dead-lettered: still lost
    assert tampered.duplicates_counted == 2 and not tampered.ok(), tampered


def test_a_gateway_back_online_gets_time_to_deliver_its_backlog() -> None:
    """Found by the network-cut scenario: between a gateway's "online" state and the first message of
    its spooled backlog, a tick judged its devices silent since the cut and opened a device_offline
    case in every grid of the gateway other than its home grid."""
    from tests.alerts.scenario import Scenario, kinds, rule

    silent = rule(id="silent", scope={"device": "wl-03"}, stale={"min_s": 60}, category="device_offline")
    scenario = Scenario([silent])
    scenario.reading(0, "wl-03")
    scenario.state(5, "gw-02", online=False)  # the 5G link drops: silence is the gateway's alert
    assert kinds(scenario.tick(180)) == []
    scenario.state(185, "gw-02", online=True)  # back: the backlog follows the online state
    assert kinds(scenario.tick(186)) == []
    scenario.reading(187, "wl-03")
    # A device that really stays silent after the gateway came back still goes stale.
    assert kinds(scenario.tick(200)) == []
    assert kinds(scenario.tick(250)) == ["firing"]
