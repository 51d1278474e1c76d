"""`yiwang up`: run the platform's services as child processes and stop them all cleanly.

Each service is its own process talking only MQTT, the databases and HTTP, exactly as in production.
Children run in their own session so that Ctrl-C reaches only the supervisor, which then stops them in
reverse start order (SIGTERM, then SIGKILL after a grace period). A child that dies is restarted with
backoff; one that keeps dying stops the whole platform with an error.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)
GRACE_S = 10.0
MAX_RESTARTS_PER_MINUTE = 5


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the supervisor itself is killed, so no orphan keeps a port.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    ready_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to the supervisor's environment for this child only (e.g. its own broker account)."""
    reloads_on_hup: bool = False
    """SIGHUP to the supervisor is passed on to this child (it re-reads its configuration)."""
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, env: Mapping[str, str], host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        """Children inherit our stdout/stderr, or write both to ``log_path`` when given."""
        self._env, self._host, self._log_path = dict(env), host, log_path
        self._children: list[Child] = []
        self._stop = threading.Event()

    @property
    def children(self) -> tuple[Child, ...]:
        return tuple(self._children)

    def _spawn(self, child: Child) -> None:
        output = self._log_path.open("ab") if self._log_path else None
        child.proc = subprocess.Popen(
            child.argv,
            env={**self._env, **child.env},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        if output:
            output.close()  # the child holds its own descriptor
        log.info("started %s (pid %d)", child.name, child.proc.pid)

    def start(self, child: Child, ready_timeout: float = 60.0) -> None:
        self._children.append(child)
        self._spawn(child)
        if child.ready_port is not None and not wait_for_port(
            self._host, child.ready_port, ready_timeout, child.proc
        ):
            raise RuntimeError(
                f"{child.name} did not open {self._host}:{child.ready_port} in {ready_timeout:.0f}s"
            )

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self._stop.set()

    def _on_hangup(self, _signum: int, _frame: FrameType | None) -> None:
        for child in self.hangup_children():
            assert child.proc is not None
            log.info("SIGHUP: passed on to %s (pid %d)", child.name, child.proc.pid)
            child.proc.send_signal(signal.SIGHUP)

    def hangup_children(self) -> list[Child]:
        """The running children a SIGHUP is passed on to."""
        return [
            c for c in self._children if c.reloads_on_hup and c.proc is not None and c.proc.poll() is None
        ]

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_hangup)  # `kill -HUP` the platform: config/ is re-read

    def watch(self) -> int:
        """Supervise until a signal (exit 0) or a child that keeps crashing (exit 1)."""
        while not self._stop.wait(0.5):
            for child in self._children:
                assert child.proc is not None
                code = child.proc.poll()
                if code is None:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > MAX_RESTARTS_PER_MINUTE:
                    log.error("%s exited %s too often; stopping the platform", child.name, code)
                    return 1
                log.warning("%s exited with %s; restarting", child.name, code)
                self._spawn(child)
        return 0

    def stop_all(self) -> None:
        for child in reversed(self._children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.terminate()
                try:
                    child.proc.wait(GRACE_S)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %.0fs; killing it", child.name, GRACE_S)
                    child.proc.kill()
                    child.proc.wait()
            log.info("stopped %s", child.name)


def self_command(*args: str) -> list[str]:
    """This same `yiwang` CLI, run with the current interpreter (works from a venv without PATH)."""
    return [sys.executable, "-m", "yiwang", *args]


def env_with(overrides: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
