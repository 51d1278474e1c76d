"""The agent's side of a rollout: when it starts an upgrade for its desired version, and when never
again by itself (a rolled-back version), what it reports in ``state``; a bad ``version`` message is
refused and changes nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.messages import UpgradeReport
from edge.upgrade.desired import RETRY_FAILED_S, DesiredVersionFollower, decide, report
from edge.upgrade.state import Attempt, Phase, UpgradeState, boot_id, write_state

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def attempt(
    version: str, phase: Phase, pid: int = 1, at: datetime = NOW, reason: str | None = None
) -> Attempt:
    return Attempt(
        version=version, from_version="0.1.0", phase=phase, started_at=at, updated_at=at,
        reason=reason, pid=pid, boot_id=boot_id(),
    )  # fmt: skip


def test_when_an_upgrade_starts() -> None:
    now = NOW.timestamp()
    assert not decide("0.2.0", "0.2.0", UpgradeState(), now).start
    assert decide("0.2.0", "0.1.0", UpgradeState(), now).start
    busy = UpgradeState(last_attempt=attempt("0.2.0", Phase.INSTALLING, pid=os.getpid()))
    assert not decide("0.2.0", "0.1.0", busy, now).start  # its upgrade process is at it
    cut = UpgradeState(last_attempt=attempt("0.2.0", Phase.DOWNLOADING, pid=2**22 + 7))
    assert decide("0.2.0", "0.1.0", cut, now).start  # that process is gone: start over (the download resumes)
    back = UpgradeState(last_attempt=attempt("0.2.0", Phase.ROLLED_BACK, reason="crashed"))
    refused = decide("0.2.0", "0.1.0", back, now + 10 * RETRY_FAILED_S)
    assert not refused.start and "not tried again by itself" in refused.why
    failed = UpgradeState(last_attempt=attempt("0.2.0", Phase.FAILED, reason="download failed"))
    assert not decide("0.2.0", "0.1.0", failed, now + 60).start
    assert decide("0.2.0", "0.1.0", failed, now + RETRY_FAILED_S + 1).start
    assert decide("0.3.0", "0.1.0", back, now).start  # another version is another decision


def test_the_follower_launches_once_and_reports_every_phase(tmp_path: Path) -> None:
    launched: list[str] = []
    reported: list[UpgradeReport | None] = []
    follower = DesiredVersionFollower(tmp_path, "0.1.0", launched.append, reported.append, clock=lambda: 0.0)
    follower.tick()
    assert launched == [] and reported == []  # nothing desired, nothing attempted yet
    follower.offer(b'{"version": "../../etc"}')
    follower.offer(b"not json")
    follower.offer(b"")  # a cleared retained message
    follower.tick()
    assert launched == []
    follower.offer(b'{"version": "0.2.0", "rollout": 3}')
    follower.tick()
    follower.tick()
    assert launched == ["0.2.0"]  # once, not on every tick
    (tmp_path / "upgrade").mkdir()
    long_reason = "not healthy within 120 s: " + "x" * 600
    write_state(tmp_path / "upgrade" / "state.json", UpgradeState(
        running="0.1.0", last_attempt=attempt("0.2.0", Phase.ROLLED_BACK, at=NOW + timedelta(seconds=5), reason=long_reason)
    ))  # fmt: skip
    follower.offer(b'{"version": "0.2.0", "rollout": 3}')  # redelivered on a reconnect
    follower.tick()
    assert launched == ["0.2.0"]  # rolled back: not again
    last = reported[-1]
    assert last is not None and (last.attempt, last.outcome) == ("0.2.0", "rolled_back")
    assert (
        last.reason is not None and len(last.reason) == 256 and last.ts == int((NOW.timestamp() + 5) * 1000)
    )
    assert report(None) is None


def test_a_launch_that_cannot_start_waits_before_the_next(tmp_path: Path) -> None:
    now = [0.0]
    calls: list[str] = []

    def launch(version: str) -> None:
        calls.append(version)
        raise OSError("systemctl: Interactive authentication required")

    follower = DesiredVersionFollower(tmp_path, "0.1.0", launch, lambda _r: None, clock=lambda: now[0])
    follower.offer(b'{"version": "0.2.0"}')
    for _ in range(5):
        follower.tick()
    assert calls == ["0.2.0"]  # not a systemctl call every quarter second
    now[0] = RETRY_FAILED_S + 1
    follower.tick()
    assert calls == ["0.2.0", "0.2.0"]
