"""A/B versions under a prefix: a power cut at any step of an upgrade leaves exactly one bootable
``current`` after recovery; a failed health check switches back; a refused release touches nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.release import FILES_DIR, Manifest
from edge.upgrade import upgrade as upgrade_module
from edge.upgrade.download import ReleaseServer, tls_context
from edge.upgrade.health import Verdict
from edge.upgrade.slots import INSTALLED_MARK, NoBootableVersion, Slots
from edge.upgrade.state import Phase, UpgradeState, write_state
from edge.upgrade.upgrade import Plan, upgrade

KEY = Ed25519PrivateKey.generate()
REAL_SYMLINK = os.symlink


class PowerCut(BaseException):
    """Raised at a chosen durable step: nothing after it happens, as when the power goes."""


def fake_version(slots: Slots, version: str, installed: bool = True) -> None:
    root = slots.versions / version
    (root / "bin").mkdir(parents=True, exist_ok=True)
    binary = root / "bin" / "yiwang"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    if installed:
        (root / INSTALLED_MARK).write_text(version)


def first_install(tmp_path: Path) -> Slots:
    slots = Slots(tmp_path / "prefix")
    fake_version(slots, "1.0")
    slots.set_link(slots.current, "1.0")
    return slots


class Recorder:
    """Restarts and health checks that succeed or fail as the test says, and are counted."""

    def __init__(self, healthy: bool) -> None:
        self.healthy = healthy
        self.restarts: list[str] = []

    def restart(self, version: str) -> None:
        self.restarts.append(version)

    def health(self, url: str, deadline_s: float) -> Verdict:
        return Verdict(self.healthy, "ok" if self.healthy else "not healthy within 1 s: not connected")


def plan(recorder: Recorder) -> Plan:
    return Plan(
        server=ReleaseServer("https://127.0.0.1:1/api/v1/releases", "t", tls_context(None)),
        public_key=KEY.public_key(),
        restarter=recorder,
        health_url="http://127.0.0.1:1/metrics",
        health=recorder.health,
    )


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Download and pip stand-ins (both proved for real elsewhere): here only the switching counts."""

    def download(server: object, version: str, staging: Path, key: object) -> Manifest:
        (staging / FILES_DIR).mkdir(parents=True, exist_ok=True)
        return Manifest.model_validate(
            {
                "version": version,
                "created_at": "2026-01-01T00:00:00Z",
                "key_id": "0" * 16,
                "files": [{"name": "w.whl", "size": 1, "sha256": "0" * 64}],
            }
        )

    def install(self: Slots, version: str, wheels: Path, **_: object) -> None:
        fake_version(self, version, installed=False)
        step("pip")  # a cut here leaves a venv without its mark
        (self.versions / version / INSTALLED_MARK).write_text(version)

    monkeypatch.setattr(upgrade_module, "download_release", download)
    monkeypatch.setattr(Slots, "install", install)


STEPS: list[str] = []
CUT_AT: list[int] = []


def step(name: str) -> None:
    STEPS.append(name)
    if CUT_AT and len(STEPS) == CUT_AT[0]:
        raise PowerCut(name)


def count_durable_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rename and symlink is a step a power cut can fall before."""
    real_replace, real_symlink = os.replace, os.symlink

    def replace(src: str | Path, dst: str | Path) -> None:
        step(f"replace {Path(dst).name}")
        real_replace(src, dst)

    def symlink(src: str | Path, dst: str | Path) -> None:
        step(f"symlink {Path(dst).name}")
        real_symlink(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "symlink", symlink)


def after_reboot(slots: Slots) -> None:
    """The attempt's owner is gone: recorded under another boot."""
    state = slots.state()
    if state.last_attempt is not None:
        state.last_attempt = state.last_attempt.model_copy(update={"boot_id": "a-boot-before-the-cut"})
        write_state(slots.state_path, state)


def test_an_upgrade_that_reports_healthy_is_confirmed(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    recorder = Recorder(healthy=True)
    attempt = upgrade(slots, "2.0", plan(recorder))
    assert attempt.phase is Phase.CONFIRMED
    assert slots.target(slots.current) == "2.0"
    assert slots.target(slots.previous) == "1.0"
    assert recorder.restarts == ["2.0"]
    assert slots.state().report() == {
        "version": "2.0",
        "attempt": "2.0",
        "outcome": "confirmed",
        "reason": "ok",
    }


def test_an_upgrade_that_never_reports_healthy_is_rolled_back_with_the_reason(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    recorder = Recorder(healthy=False)
    attempt = upgrade(slots, "2.0", plan(recorder))
    assert attempt.phase is Phase.ROLLED_BACK
    assert attempt.reason == "not healthy within 1 s: not connected"
    assert slots.target(slots.current) == "1.0"
    assert recorder.restarts == ["2.0", "1.0"]
    assert not (slots.versions / "2.0").exists()
    assert slots.state().running == "1.0"


def test_the_next_upgrade_after_a_confirmed_one_keeps_two_versions(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    upgrade(slots, "2.0", plan(Recorder(healthy=True)))
    upgrade(slots, "3.0", plan(Recorder(healthy=True)))
    assert sorted(p.name for p in slots.versions.iterdir()) == ["2.0", "3.0"]


def test_upgrading_to_the_running_version_does_nothing(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    recorder = Recorder(healthy=True)
    attempt = upgrade(slots, "1.0", plan(recorder))
    assert attempt.phase is Phase.FAILED
    assert attempt.reason == "version 1.0 is already running"
    assert recorder.restarts == []


def _steps_of_a_clean_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    STEPS.clear()
    CUT_AT.clear()
    slots = first_install(tmp_path / "dry")
    count_durable_steps(monkeypatch)
    upgrade(slots, "2.0", plan(Recorder(healthy=True)))
    return list(STEPS)


@pytest.mark.parametrize("healthy", [True, False])
def test_a_power_cut_at_any_step_recovers_to_one_bootable_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, healthy: bool
) -> None:
    steps = _steps_of_a_clean_upgrade(tmp_path, monkeypatch)
    assert len(steps) > 10, steps
    outcomes = set()
    for cut in range(1, len(steps) + 1):
        STEPS.clear()
        CUT_AT[:] = [cut]
        slots = Slots(tmp_path / f"cut-{cut}")
        fake_version(slots, "1.0")
        REAL_SYMLINK("versions/1.0", slots.current)
        with pytest.raises(PowerCut):
            upgrade(slots, "2.0", plan(Recorder(healthy=healthy)))
        CUT_AT.clear()
        after_reboot(slots)
        booted = slots.recover()
        where = f"cut before step {cut} ({steps[cut - 1]})"
        assert booted in ("1.0", "2.0"), where
        assert slots.target(slots.current) == booted, where
        assert slots.bootable(booted), where
        attempt = slots.state().last_attempt
        if attempt is None:  # cut before the attempt was recorded: nothing happened
            assert booted == "1.0" and not (slots.versions / "2.0").exists(), where
            continue
        assert attempt.finished, where
        assert slots.state().running == booted, where
        if booted == "2.0":
            assert attempt.phase is Phase.CONFIRMED, where  # only a confirmed version stays switched
        else:
            assert attempt.phase in (Phase.FAILED, Phase.ROLLED_BACK), where
            assert attempt.reason and "interrupted" in attempt.reason, where
            assert not (slots.versions / "2.0").exists(), where  # no half-installed leftover
        assert not list(slots.prefix.glob(".*.tmp")), where
        outcomes.add((booted, attempt.phase))
        # And the gateway can upgrade again afterwards.
        again = upgrade(slots, "3.0", plan(Recorder(healthy=True)))
        assert again.phase is Phase.CONFIRMED, where
    assert ("1.0", Phase.ROLLED_BACK) in outcomes  # cuts after the switch were among them
    assert ("1.0", Phase.FAILED) in outcomes


def test_recovery_leaves_a_running_attempt_alone(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    fake_version(slots, "2.0")
    attempt = slots.begin("2.0")
    slots.set_link(slots.current, "2.0")
    slots.advance(attempt, Phase.SWITCHED)
    assert slots.recover() == "2.0"  # its owner (this process) is still waiting for the health check
    assert slots.state().last_attempt is not None
    assert slots.state().last_attempt.phase is Phase.SWITCHED  # type: ignore[union-attr]


def test_a_current_pointing_at_nothing_falls_back_to_an_installed_version(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    fake_version(slots, "2.0")
    slots.set_link(slots.previous, "2.0")
    (slots.versions / "1.0" / INSTALLED_MARK).unlink()
    assert slots.recover() == "2.0"
    assert slots.target(slots.current) == "2.0"


def test_no_installed_version_at_all_says_so(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "prefix")
    with pytest.raises(NoBootableVersion, match="no installed agent version"):
        slots.recover()


def test_an_unreadable_state_file_never_stops_a_boot(tmp_path: Path) -> None:
    slots = first_install(tmp_path)
    slots.work.mkdir()
    slots.state_path.write_text("{ half a record")
    assert slots.state() == UpgradeState()
    assert slots.recover() == "1.0"
