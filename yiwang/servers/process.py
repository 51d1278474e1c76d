"""What every throw-away server shares: free ports, names, one supervised foreground process, and the
``atexit`` registry that stops whatever is still running when the interpreter exits."""

from __future__ import annotations

import atexit
import contextlib
import logging
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ServerStartError(RuntimeError):
    """A server did not come up in time (the message includes the tail of its log)."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def unique_name(prefix: str = "t") -> str:
    """A database name nobody else uses: tests get their own database and never see others' data."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def check_name(name: str) -> str:
    # Names are interpolated into CREATE/DROP DATABASE; keep them to plain identifiers.
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"database name must match {_NAME_RE.pattern}: {name!r}")
    return name


def make_workdir(prefix: str, base_dir: Path | None) -> Path:
    if base_dir is not None:
        base_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base_dir))


class Process:
    """One foreground process logging to a file: start (waiting until ``ready``), signal, halt.

    Servers wrap one in a frozen handle; the chaos harness also runs its services and gateways as
    bare ones. ``start`` after ``halt`` runs the same command line again.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready = ready or (lambda: True)
        self.env = dict(env) if env is not None else None
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running and self.proc is not None else None

    def start(self) -> None:
        with self.lock:
            if self.running:
                return
            # The child writes straight to the log file; our copy of the handle is closed at once.
            with self.log_path.open("ab") as out:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    # Own session: a Ctrl-C meant for the test runner or harness must not reach it first.
                    start_new_session=True,
                )
            proc = self.proc
        deadline = time.monotonic() + self.timeout
        while True:
            code = proc.poll()
            if code is not None:
                self._reap()
                raise ServerStartError(
                    f"{self.name} exited with code {code} while starting ({' '.join(self.argv)});"
                    f" log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if self.ready():
                log.info("%s ready (pid %d)", self.name, proc.pid)
                return
            if time.monotonic() > deadline:
                self.halt(kill=True)
                raise ServerStartError(
                    f"{self.name} not ready after {self.timeout:.0f}s; log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)

    def halt(self, *, kill: bool = False, grace: float = 15.0) -> None:
        """SIGTERM and wait (SIGKILL after ``grace``); ``kill=True`` is SIGKILL at once: a crash."""
        with self.lock:
            proc = self.proc
            if proc is None:
                return
            if proc.poll() is None:
                if kill:
                    proc.kill()
                else:
                    proc.send_signal(signal.SIGCONT)  # a paused (SIGSTOP) process cannot act on SIGTERM
                    proc.terminate()
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, grace)
                    proc.kill()
                    proc.wait(timeout=grace)
            self.proc = None

    def _reap(self) -> None:
        with self.lock:
            if self.proc is not None:
                self.proc.wait()
                self.proc = None


class ServerHandle(ABC):
    """What every server handle offers on top of its own ``halt``, ``start`` and ``stop``."""

    @abstractmethod
    def halt(self, *, kill: bool = False) -> None:
        """Stop but keep the data; ``kill=True`` is a crash (SIGKILL)."""

    @abstractmethod
    def start(self) -> None:
        """Start again (after ``halt``) on the same port and data directory."""

    @abstractmethod
    def stop(self, *, keep: bool = False) -> None:
        """Stop for good and delete the data (unless ``keep``)."""

    def restart(self, *, kill: bool = False) -> None:
        self.halt(kill=kill)
        self.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class ProcessHandle(ServerHandle):
    """A server that is one :class:`Process` with its files in ``workdir`` (the frozen dataclasses
    below it declare both)."""

    workdir: Path
    _process: Process

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def halt(self, *, kill: bool = False) -> None:
        """Stop but keep the data; ``kill=True`` is a crash (SIGKILL)."""
        self._process.halt(kill=kill)

    def start(self) -> None:
        """Start again (after ``halt``) on the same port and data directory."""
        self._process.start()

    def stop(self, *, keep: bool = False) -> None:
        """Stop for good and delete the directory (unless ``keep``)."""
        unregister(id(self._process))
        self._process.halt()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


# Handles still running at interpreter exit get stopped (a crashed script must not leave orphans).
_live: dict[int, Callable[[], None]] = {}
_live_lock = threading.Lock()


def register(key: int, stop: Callable[[], None]) -> None:
    with _live_lock:
        _live[key] = stop


def unregister(key: int) -> None:
    with _live_lock:
        _live.pop(key, None)


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        stops = list(_live.values())
    for stop in stops:
        with contextlib.suppress(Exception):
            stop()


def start_registered(process: Process, workdir: Path, stop: Callable[[], None]) -> None:
    """Start ``process`` with ``stop`` registered for exit; on failure, unregister and keep the files."""
    register(id(process), stop)
    try:
        process.start()
    except BaseException:
        unregister(id(process))
        process.halt(kill=True)
        # Keep the directory: its log explains the failure (the error message quotes its tail).
        log.error("%s failed to start; files kept in %s", process.name, workdir)
        raise
