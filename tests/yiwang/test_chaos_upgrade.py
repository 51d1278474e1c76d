"""`yiwang chaos run --scenario agent-upgrade --scenario agent-upgrade-broken`: a gateway upgraded
through the real A/B upgrade while the whole stack runs; the good release is confirmed, the broken
one rolled back, and no reading taken before, during or after either switch is lost."""

import json
import subprocess
import sys

import pytest

from tests.platform import CONFIG_DIR

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

FIELDS = {"name", "repeats", "sent", "stored", "lost", "duplicates_counted", "cases_expected", "cases_opened"}


@pytest.mark.timeout(900)
def test_an_upgrade_and_a_rolled_back_one_lose_nothing() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "yiwang", "chaos", "run", "--scale", "0.1", "--repeats", "1", "--json",
            "--scenario", "agent-upgrade", "--scenario", "agent-upgrade-broken",
        ],
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
        env={"YIWANG_CONFIG_DIR": str(CONFIG_DIR), "PATH": "/usr/sbin:/usr/bin:/bin"},
    )  # fmt: skip
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    good, broken = report["scenarios"]
    assert (good["name"], broken["name"]) == ("agent-upgrade", "agent-upgrade-broken")
    for s in (good, broken):
        assert s.keys() >= FIELDS | {"fault_landed", "faults", "upgraded", "rolled_back"}, s
        assert s["fault_landed"], s  # the gateway was switched and restarted on the new version
        assert s["sent"] > 500, s
        assert s["lost"] == 0 and s["mismatched"] == 0 and s["dead_lettered"] == 0, s
        assert s["stored"] + s["lost_unsynced"] == s["sent"], s
        assert s["duplicates_counted"] == 0 and s["duplicate_cases"] == 0, s
        assert s["ok"], s
    assert good["upgraded"] is True and good["rolled_back"] is False
    assert good["faults"][0]["outcome"] == "confirmed" and good["faults"][0]["running"] == "1.1.0"
    assert broken["upgraded"] is False and broken["rolled_back"] is True
    fault = broken["faults"][0]
    assert fault["outcome"] == "rolled_back" and fault["running"] == "1.0.0"
    assert "not healthy within 15 s: the gateway process is not running" in fault["reason"]
    assert {"upgrade_s", "longest_pause_s"} <= fault.keys()
