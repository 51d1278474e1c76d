"""Agent versions side by side under one prefix, and the links that say which one boots.

::

    <prefix>/versions/<version>/     a virtualenv; ``.installed`` is written last, once pip succeeded
    <prefix>/current -> versions/<v>  what the service starts (``<prefix>/current/bin/yiwang edge run``)
    <prefix>/previous -> versions/<v> the version before, kept for a rollback
    <prefix>/upgrade/state.json       the last attempt and its phase (:mod:`edge.upgrade.state`)

A link is switched by creating it under a temporary name and renaming it over the old one (rename is
atomic), then fsyncing the directory: after a power cut ``current`` points at the old or the new
version, never at nothing. A version without ``.installed`` is never made current.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.release import is_safe_version
from edge.upgrade.state import Attempt, Phase, UpgradeState, boot_id, fsync_dir, now, read_state, write_state

log = logging.getLogger(__name__)

INSTALLED_MARK = ".installed"
PIP_TIMEOUT_S = 600.0


class InstallError(Exception):
    """A version could not be installed; the message carries pip's last words."""


class NoBootableVersion(Exception):
    """No installed version is left to start: the gateway needs a reinstall (install-edge.sh)."""


class Slots:
    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.versions = prefix / "versions"
        self.current = prefix / "current"
        self.previous = prefix / "previous"
        self.work = prefix / "upgrade"
        self.state_path = self.work / "state.json"

    def staging(self, version: str) -> Path:
        return self.work / "staging" / version

    def version_dir(self, version: str) -> Path:
        if not is_safe_version(version):
            raise ValueError(f"{version!r} is not a version")
        return self.versions / version

    # --- reading ---------------------------------------------------------------------------------------

    def target(self, link: Path) -> str | None:
        """The version a link points at, None when it is missing or points outside ``versions/``."""
        try:
            dest = os.readlink(link)
        except OSError:
            return None
        parts = Path(dest).parts
        if len(parts) != 2 or parts[0] != "versions" or not is_safe_version(parts[1]):
            return None
        return parts[1]

    def bootable(self, version: str | None) -> bool:
        if version is None or not is_safe_version(version):
            return False
        root = self.versions / version
        return (root / INSTALLED_MARK).is_file() and os.access(root / "bin" / "yiwang", os.X_OK)

    def installed(self) -> list[str]:
        if not self.versions.is_dir():
            return []
        return sorted(p.name for p in self.versions.iterdir() if self.bootable(p.name))

    def state(self) -> UpgradeState:
        return read_state(self.state_path)

    # --- writing ---------------------------------------------------------------------------------------

    def set_link(self, link: Path, version: str) -> None:
        """Point ``link`` at ``versions/<version>`` atomically and durably."""
        tmp = link.with_name(f".{link.name}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(f"versions/{version}", tmp)  # relative: the prefix can be staged or moved
        os.replace(tmp, link)
        fsync_dir(link.parent)

    def record(self, attempt: Attempt | None, running: str | None = None) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        state = self.state()
        if running is not None:
            state.running = running
        state.last_attempt = attempt
        write_state(self.state_path, state)

    def begin(self, version: str) -> Attempt:
        t = now()
        attempt = Attempt(
            version=version,
            from_version=self.target(self.current),
            phase=Phase.DOWNLOADING,
            started_at=t,
            updated_at=t,
            pid=os.getpid(),
            boot_id=boot_id(),
        )
        self.record(attempt, running=attempt.from_version)
        return attempt

    def advance(self, attempt: Attempt, phase: Phase, reason: str | None = None) -> Attempt:
        attempt = attempt.model_copy(update={"phase": phase, "updated_at": now(), "reason": reason})
        running = self.target(self.current)
        self.record(attempt, running=running)
        return attempt

    def install(
        self,
        version: str,
        wheels: Path,
        requirement: str | None = None,
        python: str = sys.executable,
        dependency_paths: Sequence[Path] = (),
        no_deps: bool = False,
    ) -> None:
        """A new venv ``versions/<version>`` with the release installed from ``wheels`` only (no index).

        ``dependency_paths`` and ``no_deps`` are the test suite's shortcut (docs/upgrades.md): the slot
        sees third-party packages through a ``.pth`` file instead of installing their wheels.
        """
        root = self.version_dir(version)
        if root.exists():
            shutil.rmtree(root)  # a half-installed leftover: a venv cannot be moved, so start clean
        self.versions.mkdir(parents=True, exist_ok=True)
        # With its own pip (ensurepip is bundled: offline): the next upgrade runs from this version.
        run([python, "-m", "venv", str(root)], "create the virtualenv")
        if dependency_paths:
            site = _site_packages(root)
            (site / "_yiwang_dependencies.pth").write_text("".join(f"{p}\n" for p in dependency_paths))
        command = [
            str(root / "bin" / "python"), "-m", "pip", "install",
            "--disable-pip-version-check", "--no-input", "--no-index", "--find-links", str(wheels),
            "--ignore-installed",
        ]  # fmt: skip
        if no_deps:
            command.append("--no-deps")
        command.append(requirement or f"yiwang[edge]=={version}")
        run(command, f"install yiwang {version}")
        if not os.access(root / "bin" / "yiwang", os.X_OK):
            raise InstallError(f"yiwang {version} installed without a `yiwang` command")
        mark = root / INSTALLED_MARK
        with mark.open("w") as out:
            out.write(version + "\n")
            out.flush()
            os.fsync(out.fileno())
        fsync_dir(root)

    def remove(self, version: str) -> None:
        if version in (self.target(self.current), self.target(self.previous)):
            return
        root = self.version_dir(version)
        if root.exists():
            shutil.rmtree(root)

    def prune(self) -> None:
        """Keep the current and the previous version only."""
        if not self.versions.is_dir():
            return
        for path in self.versions.iterdir():
            if is_safe_version(path.name):
                self.remove(path.name)

    # --- after a crash or power cut ----------------------------------------------------------------------

    def recover(self) -> str:
        """Leave exactly one bootable ``current`` and a finished record; the version that boots.

        An attempt whose owner still runs is left alone. One cut before the switch is failed and its
        half-installed version removed; one cut after the switch but before the new version confirmed
        healthy is rolled back — the old version ran before the attempt, so it is the one known to boot.
        """
        for link in (self.current, self.previous):
            link.with_name(f".{link.name}.tmp").unlink(missing_ok=True)
        state = self.state()
        attempt = state.last_attempt
        if attempt is not None and not attempt.finished and not attempt.owner_alive():
            self._finish_interrupted(attempt)
        current = self.target(self.current)
        if self.bootable(current):
            assert current is not None
            return current
        fallback = self.target(self.previous)
        if not self.bootable(fallback):
            installed = self.installed()
            fallback = installed[-1] if installed else None
        if fallback is None:
            raise NoBootableVersion(f"{self.prefix}: no installed agent version to start")
        log.warning("upgrade: %s pointed at %s, not bootable; starting %s", self.current, current, fallback)
        self.set_link(self.current, fallback)
        self.record(self.state().last_attempt, running=fallback)
        return fallback

    def _finish_interrupted(self, attempt: Attempt) -> None:
        current = self.target(self.current)
        reason = f"interrupted while {attempt.phase.value} (the upgrading process stopped or power was cut)"
        back = attempt.from_version
        if current == attempt.version and back is not None and self.bootable(back):
            self.set_link(self.current, back)
            self.advance(attempt, Phase.ROLLED_BACK, reason + "; the new version never reported healthy")
            self.remove(attempt.version)
            return
        if current == attempt.version and self.bootable(current):
            # Nothing to go back to (a first install): keep the new version rather than none.
            self.advance(attempt, Phase.CONFIRMED, reason + "; kept: no previous version")
            return
        self.advance(attempt, Phase.FAILED, reason)
        self.remove(attempt.version)


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise InstallError(f"{venv}: no site-packages directory")
    return found[0]


def run(command: Sequence[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InstallError(f"could not {what}: {err}") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InstallError(f"could not {what}: {' / '.join(tail) or f'exit status {done.returncode}'}")
