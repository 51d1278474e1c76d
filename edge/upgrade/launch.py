"""Start the upgrade to a desired version in a process that outlives the agent it restarts.

Under systemd: ``systemctl start --no-block yiwang-edge-upgrade@<version>`` (the unit runs as root,
the agent as ``yiwang``: the polkit rule install-edge.sh writes, ``edge/polkit/``, allows exactly
that unit; without it the attempt is logged as not started and retried later).
Otherwise: ``<running python> -m edge.upgrade.run_desired <version>`` in a session of its own, its
output appended to ``<prefix>/upgrade/desired.log``; the supervisor stops only the agent.

What the worker needs comes from the environment the agent got (``/etc/yiwang/upgrade.env`` under
systemd; the supervisor sets the prefix): see :class:`UpgradeEnv`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edge.upgrade.restart import under_systemd

UPGRADE_UNIT = "yiwang-edge-upgrade@{version}.service"
LOG_NAME = "desired.log"
MAX_LOG_BYTES = 1024 * 1024
"""The worker's log is started afresh beyond this: one attempt writes a few kilobytes."""


@dataclass(frozen=True, slots=True)
class UpgradeEnv:
    """The upgrade's settings, from ``YIWANG_*`` environment variables (names as in upgrade.env)."""

    prefix: Path
    server: str
    token_file: Path
    public_key: Path
    ca_file: Path | None
    metrics_url: str
    deadline_s: float
    dependency_paths: tuple[Path, ...]
    """Test and lab shortcut (docs/upgrades.md): third-party packages seen through a ``.pth``."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> UpgradeEnv | None:
        """None when this agent is not upgradable (no prefix or no release server configured)."""
        env = os.environ if environ is None else environ
        prefix, server = env.get("YIWANG_UPGRADE_PREFIX"), env.get("YIWANG_RELEASE_SERVER")
        if not prefix or not server:
            return None
        deps = env.get("YIWANG_UPGRADE_DEPENDENCY_PATHS", "")
        return cls(
            prefix=Path(prefix),
            server=server,
            token_file=Path(env.get("YIWANG_RELEASE_TOKEN_FILE", "/etc/yiwang/release.token")),
            public_key=Path(env.get("YIWANG_RELEASE_KEY", "/etc/yiwang/release-key.pub")),
            ca_file=Path(env["YIWANG_RELEASE_CA"]) if env.get("YIWANG_RELEASE_CA") else None,
            metrics_url=env.get("YIWANG_METRICS_URL", "http://127.0.0.1:9108/metrics"),
            deadline_s=float(env.get("YIWANG_UPGRADE_DEADLINE_S", "120")),
            dependency_paths=tuple(Path(p) for p in deps.split(os.pathsep) if p),
        )


def launch_upgrade(env: UpgradeEnv, version: str) -> None:
    """Start the upgrade to ``version`` and return at once; OSError when it cannot even start."""
    if under_systemd():
        done = subprocess.run(
            ["systemctl", "start", "--no-block", UPGRADE_UNIT.format(version=version)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise OSError(f"systemctl start {UPGRADE_UNIT.format(version=version)}: {done.stderr.strip()}")
        return
    work = env.prefix / "upgrade"
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / LOG_NAME
    if log_path.exists() and log_path.stat().st_size > MAX_LOG_BYTES:
        log_path.unlink()
    with log_path.open("ab") as log_file:
        subprocess.Popen(  # our own interpreter and module, a version checked by the caller
            [sys.executable, "-m", "edge.upgrade.run_desired", version],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
