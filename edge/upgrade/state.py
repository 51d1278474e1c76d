"""The upgrade's record on the gateway: what runs, the last attempt, how far it got and how it ended.

One small JSON file, replaced atomically and fsynced at every phase, so that after a power cut the
next start knows exactly which step was interrupted (:func:`edge.upgrade.slots.Slots.recover`). The
same record is what the gateway reports in its ``state`` message: version running, last attempt,
outcome and reason.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.atomic_files import replace_file

MAX_STATE_BYTES = 64 * 1024


class Phase(StrEnum):
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    INSTALLED = "installed"
    SWITCHING = "switching"
    SWITCHED = "switched"  # the new version is current; waiting for it to report healthy
    # Terminal phases: the attempt is over.
    CONFIRMED = "confirmed"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"  # never switched: the running version was not touched


TERMINAL = frozenset({Phase.CONFIRMED, Phase.ROLLED_BACK, Phase.FAILED})


def boot_id() -> str:
    """This boot's id: an attempt recorded under another boot was cut by a power loss or reboot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    from_version: str | None
    phase: Phase
    started_at: datetime
    updated_at: datetime
    reason: str | None = Field(default=None, max_length=1024)
    pid: int
    boot_id: str

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL

    def owner_alive(self) -> bool:
        """The process running this attempt is still at it (same boot, pid alive)."""
        if self.boot_id != boot_id():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class UpgradeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    running: str | None = None
    last_attempt: Attempt | None = None

    def report(self) -> dict[str, str | None]:
        """The flat fields a ``state`` message carries."""
        attempt = self.last_attempt
        return {
            "version": self.running,
            "attempt": attempt.version if attempt else None,
            "outcome": attempt.phase.value if attempt else None,
            "reason": attempt.reason if attempt else None,
        }


def now() -> datetime:
    return datetime.now(UTC)


def read_state(path: Path) -> UpgradeState:
    """The recorded state; an empty one when there is none or it is unreadable (the links still tell
    which version is current, so a lost record never stops the agent from booting)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return UpgradeState()
    if len(data) > MAX_STATE_BYTES:
        return UpgradeState()
    try:
        return UpgradeState.model_validate_json(data)
    except ValidationError:
        return UpgradeState()


def write_state(path: Path, state: UpgradeState) -> None:
    """Replace the record atomically and durably: the new file and the directory entry are fsynced."""
    data = json.dumps(state.model_dump(mode="json"), indent=2).encode()
    replace_file(path, data)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
