"""``yiwang edge supervise``: run the agent of ``<prefix>/current`` and restart it when that moves.

For gateways without systemd (containers, staging boxes). Before every start it runs the slots'
recovery, so a power cut during an upgrade boots one of the two versions; a child that exits on its
own is started again after a back-off; a switch of ``current`` stops the child (SIGTERM, then SIGKILL
after the grace period, as systemd would) and starts the new version.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from edge.upgrade.desired import PREFIX_ENV
from edge.upgrade.restart import SupervisorStatus, write_status
from edge.upgrade.slots import Slots

log = logging.getLogger(__name__)

STATUS_NAME = "supervisor.json"
STOP_GRACE_S = 30.0
BACKOFF_MAX_S = 30.0
STEADY_S = 60.0
"""A child that ran this long before exiting was not crash-looping: its restart waits the minimum."""


def child_environment(prefix: Path | None = None) -> dict[str, str]:
    """Ours, without PYTHONPATH/PYTHONHOME: they would put one source tree before every version's own
    site-packages, and every "version" would run the same code. With the prefix, so the agent can
    follow its desired version (:mod:`edge.upgrade.desired`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    if prefix is not None:
        env[PREFIX_ENV] = str(prefix.resolve())
    return env


def _stop(child: subprocess.Popen[bytes], grace_s: float) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        log.warning("supervise: agent %d ignored SIGTERM for %g s; killing it", child.pid, grace_s)
        child.kill()
        child.wait()


def supervise(
    slots: Slots,
    agent_args: Sequence[str],
    stop: threading.Event,
    poll_s: float = 0.5,
    grace_s: float = STOP_GRACE_S,
) -> None:
    """Run ``<version>/bin/yiwang *agent_args`` until ``stop``; restart it on exit or on a switch."""
    slots.work.mkdir(parents=True, exist_ok=True)
    status_path = slots.work / STATUS_NAME
    backoff = 1.0
    while not stop.is_set():
        version = slots.recover()
        command = [str(slots.versions / version / "bin" / "yiwang"), *agent_args]
        child = subprocess.Popen(command, env=child_environment(slots.prefix))
        started = time.monotonic()
        status = SupervisorStatus(
            supervisor_pid=os.getpid(), child_pid=child.pid, version=version, started_at=time.time()
        )
        write_status(status_path, status)
        log.info("supervise: agent %s started (pid %d)", version, child.pid)
        switched = False
        while not stop.is_set():
            if child.poll() is not None:
                break
            if slots.target(slots.current) != version:
                switched = True
                break
            stop.wait(poll_s)
        if stop.is_set() or switched:
            _stop(child, grace_s)
            if switched:
                log.info("supervise: current moved from %s; restarting", version)
                backoff = 1.0
            continue
        log.warning("supervise: agent %s exited with status %s", version, child.returncode)
        backoff = 1.0 if time.monotonic() - started > STEADY_S else min(backoff * 2, BACKOFF_MAX_S)
        stop.wait(backoff)
