"""Restart the agent on the version ``current`` points at: through systemd, or through our supervisor.

Under systemd, ``systemctl restart yiwang-edge`` stops the old process and starts the new one (it
returns once the unit reported READY or failed). Without systemd, ``yiwang edge supervise`` runs the
agent and restarts it when ``current`` moves; it writes which version its child runs, and the restart
is done when that file names the wanted version — the supervisor writes it only after the old child
exited, so nothing the health probe then reads comes from the old process.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

SYSTEMD_UNIT = "yiwang-edge.service"


class RestartError(Exception):
    """The agent could not be restarted on the wanted version."""


class Restarter(Protocol):
    def restart(self, version: str) -> None:
        """Return once the old agent process exited and ``version`` was started."""


class SupervisorStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supervisor_pid: int
    child_pid: int
    version: str
    started_at: float


def read_status(path: Path) -> SupervisorStatus | None:
    try:
        return SupervisorStatus.model_validate_json(path.read_bytes()[:4096])
    except (OSError, ValidationError):
        return None


def write_status(path: Path, status: SupervisorStatus) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(status.model_dump()))
    os.replace(tmp, path)


class SystemdRestart:
    def __init__(self, unit: str = SYSTEMD_UNIT, systemctl: str = "systemctl", timeout_s: float = 120.0):
        self.unit = unit
        self.systemctl = systemctl
        self.timeout_s = timeout_s

    def restart(self, version: str) -> None:
        try:
            done = subprocess.run(
                [self.systemctl, "restart", self.unit],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise RestartError(f"systemctl restart {self.unit}: {err}") from err
        if done.returncode != 0:
            raise RestartError(f"systemctl restart {self.unit}: {done.stderr.strip() or done.returncode}")


class SupervisorRestart:
    def __init__(self, status_path: Path, timeout_s: float = 60.0, poll_s: float = 0.2) -> None:
        self.status_path = status_path
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def restart(self, version: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            status = read_status(self.status_path)
            if status is not None and status.version == version:
                return
            time.sleep(self.poll_s)
        raise RestartError(
            f"the supervisor did not start version {version} within {self.timeout_s:g} s "
            f"(is `yiwang edge supervise` running? {self.status_path})"
        )


def under_systemd() -> bool:
    """systemd sets INVOCATION_ID for every unit it starts (NOTIFY_SOCKET for Type=notify ones)."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET"))
