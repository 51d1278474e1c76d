"""One upgrade attempt, start to end: fetch and verify, install beside, switch, confirm or roll back.

Every phase is recorded before it starts (:mod:`edge.upgrade.state`), so a crash or power cut at any
point is finished by :meth:`Slots.recover` on the next start. The spool is never touched: it lives in
the data directory, not in a version, and readings taken while the agent restarts wait in it.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.release import FILES_DIR, ReleaseError, is_safe_version
from edge.upgrade.download import DownloadError, ReleaseServer, download_release
from edge.upgrade.health import DEFAULT_DEADLINE_S, Verdict, wait_healthy
from edge.upgrade.restart import Restarter, RestartError
from edge.upgrade.slots import InstallError, Slots
from edge.upgrade.state import Attempt, Phase

log = logging.getLogger(__name__)


class UpgradeBusy(Exception):
    """Another upgrade of this prefix is running."""


@dataclass(frozen=True, slots=True)
class InstallOptions:
    """How a version is installed; the defaults are a gateway's (docs/upgrades.md has the test's)."""

    dependency_paths: tuple[Path, ...] = ()
    no_deps: bool = False
    requirement: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    server: ReleaseServer
    public_key: Ed25519PublicKey
    restarter: Restarter
    health_url: str
    deadline_s: float = DEFAULT_DEADLINE_S
    install: InstallOptions = field(default_factory=InstallOptions)
    health: Callable[[str, float], Verdict] = wait_healthy


@contextmanager
def exclusive(slots: Slots) -> Iterator[None]:
    slots.work.mkdir(parents=True, exist_ok=True)
    with (slots.work / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpgradeBusy(f"another upgrade of {slots.prefix} is running") from None
        yield


def upgrade(slots: Slots, version: str, plan: Plan) -> Attempt:
    """Upgrade to ``version``; the finished attempt (confirmed, rolled back or failed, with the reason)."""
    if not is_safe_version(version):
        raise ValueError(f"{version!r} is not a version")
    with exclusive(slots):
        slots.recover()
        attempt = slots.begin(version)
        if attempt.from_version == version:
            return slots.advance(attempt, Phase.FAILED, f"version {version} is already running")
        staging = slots.staging(version)
        try:
            manifest = download_release(plan.server, version, staging, plan.public_key)
        except ReleaseError as err:
            shutil.rmtree(staging, ignore_errors=True)  # never install, nor resume, a refused release
            return _fail(slots, attempt, f"release refused: {err}")
        except (DownloadError, OSError) as err:
            return _fail(slots, attempt, f"download failed: {err}")  # staging kept: the next try resumes
        attempt = slots.advance(attempt, Phase.INSTALLING)
        options = plan.install
        try:
            slots.install(
                manifest.version,
                staging / FILES_DIR,
                requirement=options.requirement(version) if options.requirement else None,
                dependency_paths=options.dependency_paths,
                no_deps=options.no_deps,
            )
        except InstallError as err:
            slots.remove(version)
            return _fail(slots, attempt, f"install failed: {err}")
        attempt = slots.advance(attempt, Phase.INSTALLED)
        shutil.rmtree(staging, ignore_errors=True)
        return _switch_and_confirm(slots, attempt, plan)


def _fail(slots: Slots, attempt: Attempt, reason: str) -> Attempt:
    log.warning("upgrade to %s failed: %s", attempt.version, reason)
    return slots.advance(attempt, Phase.FAILED, reason)


def _switch_and_confirm(slots: Slots, attempt: Attempt, plan: Plan) -> Attempt:
    old = attempt.from_version
    attempt = slots.advance(attempt, Phase.SWITCHING)
    if old is not None:
        slots.set_link(slots.previous, old)
    slots.set_link(slots.current, attempt.version)
    attempt = slots.advance(attempt, Phase.SWITCHED)
    try:
        plan.restarter.restart(attempt.version)
        verdict = plan.health(plan.health_url, plan.deadline_s)
    except RestartError as err:
        verdict = Verdict(False, f"restart failed: {err}")
    if verdict.healthy:
        log.info("upgrade to %s confirmed: %s", attempt.version, verdict.reason)
        attempt = slots.advance(attempt, Phase.CONFIRMED, verdict.reason)
        slots.prune()
        return attempt
    log.warning("upgrade to %s: %s; rolling back to %s", attempt.version, verdict.reason, old)
    if old is None:
        return slots.advance(attempt, Phase.FAILED, f"{verdict.reason}; no previous version to go back to")
    slots.set_link(slots.current, old)
    reason = verdict.reason
    try:
        plan.restarter.restart(old)
    except RestartError as err:
        reason += f"; restarting {old} failed too: {err}"
    attempt = slots.advance(attempt, Phase.ROLLED_BACK, reason)
    slots.remove(attempt.version)
    return attempt
