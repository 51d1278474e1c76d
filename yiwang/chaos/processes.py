"""Restartable processes of a chaos stack: each can be killed, stopped, paused and started again."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from yiwang.bench.influxd import influxd_command
from yiwang.bench.postgres import BIN as PG_BIN
from yiwang.bench.postgres import _as_postgres
from yiwang.bench.stack import free_port

HOST = "127.0.0.1"


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Proc:
    """One foreground process with its output in a log file; ``ready`` says when it serves."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.name, self.argv, self.log_path, self.env = name, list(argv), log_path, env
        self.ready = ready or (lambda: True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C for the harness must not reach the stack first
            )
        proc = self.proc
        deadline = time.monotonic() + timeout
        while not self.ready():
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(30)

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def influxd(workdir: Path) -> tuple[Proc, str]:
    """influxd in ``workdir`` (same recipe as the benchmarks); not started yet."""
    argv, url = influxd_command(workdir)

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/ping", timeout=1).status_code == 204
        return False

    return Proc("influxd", argv, workdir / "influxd.log", ready=ready), url


class Postgres:
    """A throw-away cluster that can be restarted in place (``pg_ctl`` rather than a child process)."""

    def __init__(self) -> None:
        # Short path: the Unix socket path must stay below 107 bytes.
        self.workdir = Path(tempfile.mkdtemp(prefix="yw-chaos-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.workdir, user="postgres", group="postgres")
        self.data, self.port = self.workdir / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@{HOST}:{self.port}/chaos"

    def _run(self, argv: list[str], timeout: float = 120) -> None:
        subprocess.run(_as_postgres(argv), check=True, capture_output=True, timeout=timeout)

    def create(self) -> None:
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        self._run([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"])
        self.start()
        self._run([str(PG_BIN / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", "chaos"])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses={HOST}"
        log = str(self.workdir / "log")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, recovery from the WAL at the next start."""
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            capture_output=True,
            check=False,
            timeout=120,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)
