"""Throw-away real servers (Mosquitto, influxd, PostgreSQL) on free 127.0.0.1 ports.

Plain helpers, independent of pytest: the test fixtures use them, and so can a benchmark or chaos
script. Each ``start_*`` creates a private temp directory (config, data, log), starts the server, waits
(bounded) until it answers and returns a frozen handle. On the handle:

- ``halt(kill=False)`` stops the process but keeps its data (``kill=True`` sends SIGKILL: a crash);
- ``start()`` brings it back on the same port and data directory; ``restart(kill=False)`` does both;
- ``stop()`` stops it for good and deletes the temp directory.

A failed start raises :class:`ServerStartError` carrying the tail of the server's log. Servers still
running when the interpreter exits are stopped by an ``atexit`` hook, so a crashed script leaves no
orphans behind.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MOSQUITTO_BIN = "/usr/sbin/mosquitto"
INFLUXD_BIN = "/usr/bin/influxd"
POSTGRES_BIN_DIR = Path("/usr/lib/postgresql/15/bin")

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


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _check_name(name: str) -> str:
    # Names are interpolated into CREATE/DROP DATABASE; keep them to plain identifiers.
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"database name must match {_NAME_RE.pattern}: {name!r}")
    return name


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _make_workdir(prefix: str, base_dir: Path | None) -> Path:
    if base_dir is not None:
        base_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base_dir))


# --------------------------------------------------------------------------------------------------
# Process supervision shared by Mosquitto and influxd (PostgreSQL daemonises itself via pg_ctl).


class _Daemon:
    """One foreground server process: start, wait until ready, stop. Mutable; the handles are frozen."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        ready: Callable[[], bool],
        timeout: float,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready = ready
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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
                    # Own session: a Ctrl-C meant for the test runner must not kill the server under it.
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

    def halt(self, *, kill: bool = False, timeout: float = 15.0) -> None:
        with self.lock:
            proc = self.proc
            if proc is None:
                return
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, timeout)
                    proc.kill()
                    proc.wait(timeout=timeout)
            self.proc = None

    def _reap(self) -> None:
        with self.lock:
            if self.proc is not None:
                self.proc.wait()
                self.proc = None


# Handles still running at interpreter exit get stopped (a crashed script must not leave orphans).
_live: dict[int, Callable[[], None]] = {}
_live_lock = threading.Lock()


def _register(key: int, stop: Callable[[], None]) -> None:
    with _live_lock:
        _live[key] = stop


def _unregister(key: int) -> None:
    with _live_lock:
        _live.pop(key, None)


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        stops = list(_live.values())
    for stop in stops:
        with contextlib.suppress(Exception):
            stop()


# --------------------------------------------------------------------------------------------------
# Mosquitto


@dataclass(frozen=True)
class MosquittoServer:
    host: str
    port: int
    workdir: Path
    _daemon: _Daemon = field(repr=False, compare=False)

    @property
    def log_path(self) -> Path:
        return self._daemon.log_path

    @property
    def running(self) -> bool:
        return self._daemon.running

    def halt(self, *, kill: bool = False) -> None:
        """Stop the broker but keep its persistence file; ``kill=True`` is a crash (SIGKILL)."""
        self._daemon.halt(kill=kill)

    def start(self) -> None:
        """Start again (after ``halt``) on the same port and persistence directory."""
        self._daemon.start()

    def restart(self, *, kill: bool = False) -> None:
        self.halt(kill=kill)
        self.start()

    def stop(self) -> None:
        """Stop for good and delete the temp directory."""
        _unregister(id(self._daemon))
        self._daemon.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_mosquitto(
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    extra_config: str = "",
    timeout: float = 10.0,
    accounts_dir: Path | None = None,
) -> MosquittoServer:
    """Start Mosquitto with persistence and queues sized for outages; anonymous unless ``accounts_dir``
    (a `broker/accounts.py` store: password file + ACL) is given.

    ``extra_config`` is appended to the generated config (e.g. ``autosave_interval 1``).
    """
    port = port or free_port()
    workdir = _make_workdir("yiwang-mosquitto-", base_dir)
    log_path = workdir / "mosquitto.log"
    config = [
        f"listener {port} {HOST}",
        *(
            [f"password_file {accounts_dir / 'passwd'}", f"acl_file {accounts_dir / 'acl'}"]
            if accounts_dir
            else ["allow_anonymous true"]
        ),
        "persistence true",
        # The trailing slash matters: Mosquitto concatenates it with the file name.
        f"persistence_location {workdir}/",
        # Defaults (1000 queued, 20 in flight) silently drop messages under load; see REFERENCES.md.
        "max_queued_messages 1000000",
        "max_inflight_messages 100",
        f"log_dest file {log_path}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        # As root Mosquitto drops to the "mosquitto" user, which cannot write our root-owned temp dir.
        config.append("user root")
    config_path = workdir / "mosquitto.conf"
    config_path.write_text("\n".join(config) + "\n" + extra_config + "\n", encoding="utf-8")
    daemon = _Daemon(
        "mosquitto",
        [MOSQUITTO_BIN, "-c", str(config_path)],
        log_path,
        lambda: _port_open(HOST, port),
        timeout,
    )
    server = MosquittoServer(HOST, port, workdir, daemon)
    _start_or_cleanup(daemon, workdir, server.stop)
    return server


def _start_or_cleanup(daemon: _Daemon, workdir: Path, stop: Callable[[], None]) -> None:
    _register(id(daemon), stop)
    try:
        daemon.start()
    except BaseException:
        _unregister(id(daemon))
        daemon.halt(kill=True)
        # Keep the directory: its log explains the failure (the error message quotes its tail).
        log.error("%s failed to start; files kept in %s", daemon.name, workdir)
        raise


# --------------------------------------------------------------------------------------------------
# InfluxDB 1.x


def _influx_query(url: str, statement: str, timeout: float = 10.0) -> None:
    data = urllib.parse.urlencode({"q": statement}).encode()
    # url is always our own http://127.0.0.1:PORT, never user input (hence the S310 waivers).
    request = urllib.request.Request(f"{url}/query", data=data, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")
        exc.close()
        raise RuntimeError(f"influxd refused {statement!r}: HTTP {exc.code} {detail}") from exc
    # /query answers 200 even when the statement failed; the error sits in the JSON body.
    if '"error"' in body:
        raise RuntimeError(f"influxd refused {statement!r}: {body}")


def _influx_pings(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1.0) as response:  # noqa: S310
            return bool(response.status == 204)
    except (OSError, urllib.error.URLError):
        return False


@dataclass(frozen=True)
class InfluxDatabase:
    """One database on an influxd: what a store needs to connect."""

    url: str
    database: str

    @property
    def store_url(self) -> str:
        """The ``open_store`` URL (``influxdb://host:port/db``)."""
        return f"influxdb://{urllib.parse.urlsplit(self.url).netloc}/{self.database}"


@dataclass(frozen=True)
class InfluxServer:
    url: str
    database: str
    host: str
    port: int
    workdir: Path
    _daemon: _Daemon = field(repr=False, compare=False)

    @property
    def log_path(self) -> Path:
        return self._daemon.log_path

    @property
    def running(self) -> bool:
        return self._daemon.running

    @property
    def store_url(self) -> str:
        return InfluxDatabase(self.url, self.database).store_url

    def create_database(self, name: str | None = None) -> InfluxDatabase:
        """Create (idempotently) a database; a unique name when none is given."""
        name = _check_name(name or unique_name())
        _influx_query(self.url, f'CREATE DATABASE "{name}"')
        return InfluxDatabase(self.url, name)

    def drop_database(self, name: str) -> None:
        _influx_query(self.url, f'DROP DATABASE "{_check_name(name)}"')

    def halt(self, *, kill: bool = False) -> None:
        self._daemon.halt(kill=kill)

    def start(self) -> None:
        self._daemon.start()

    def restart(self, *, kill: bool = False) -> None:
        self.halt(kill=kill)
        self.start()

    def stop(self) -> None:
        _unregister(id(self._daemon))
        self._daemon.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_influxd(
    database: str = "yiwang",
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    timeout: float = 30.0,
) -> InfluxServer:
    """Start a private influxd 1.x and create ``database`` on it."""
    _check_name(database)
    port = port or free_port()
    rpc_port = free_port()
    workdir = _make_workdir("yiwang-influxd-", base_dir)
    config_path = workdir / "influxd.conf"
    config_path.write_text(
        f"""\
reporting-disabled = true
# The RPC (backup/restore) port; its default 8088 would clash between parallel servers.
bind-address = "{HOST}:{rpc_port}"

[meta]
  dir = "{workdir / "meta"}"

[data]
  dir = "{workdir / "data"}"
  wal-dir = "{workdir / "wal"}"
  query-log-enabled = false

[http]
  bind-address = "{HOST}:{port}"
  # One access-log line per write drowns the log (and costs time) under benchmark load.
  log-enabled = false

[monitor]
  # The _internal database writes every 10 s; useless noise for a throw-away server.
  store-enabled = false

[continuous_queries]
  enabled = false
""",
        encoding="utf-8",
    )
    url = f"http://{HOST}:{port}"
    daemon = _Daemon(
        "influxd",
        [INFLUXD_BIN, "-config", str(config_path)],
        workdir / "influxd.log",
        lambda: _influx_pings(url),
        timeout,
    )
    server = InfluxServer(url, database, HOST, port, workdir, daemon)
    _start_or_cleanup(daemon, workdir, server.stop)
    try:
        server.create_database(database)
    except BaseException:
        server.stop()
        raise
    return server


# --------------------------------------------------------------------------------------------------
# PostgreSQL 15


def _as_postgres(argv: Sequence[str]) -> list[str]:
    # PostgreSQL refuses to run as root; switch to the postgres user when we are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return list(argv)


def _run(argv: Sequence[str], what: str, log_path: Path, timeout: float) -> None:
    try:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerStartError(
            f"{what} did not finish in {timeout:.0f}s; log {log_path}:\n{log_tail(log_path)}"
        ) from exc
    if result.returncode != 0:
        raise ServerStartError(
            f"{what} failed with code {result.returncode}:\n{result.stdout}{result.stderr}\n"
            f"log {log_path}:\n{log_tail(log_path)}"
        )


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    database: str
    workdir: Path
    fsync: bool
    timeout: float = field(repr=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of ``database``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def running(self) -> bool:
        result = subprocess.run(
            _as_postgres([str(POSTGRES_BIN_DIR / "pg_ctl"), "-D", str(self.data_dir), "status"]),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def create_database(self, name: str | None = None) -> str:
        """Create a database (unique name when none is given); returns its SQLAlchemy URL."""
        name = _check_name(name or unique_name())
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends sessions a test forgot to close instead of failing.
        self._admin(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        import psycopg  # the server extra; imported late so Mosquitto-only users do not need it

        with psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(statement.encode())

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses={self.host}"
        if not self.fsync:
            # Throw-away test data: skipping fsync makes CREATE DATABASE and commits much faster.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run(
            _as_postgres(
                [
                    str(POSTGRES_BIN_DIR / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(self.timeout)),
                    "start",
                ]
            ),
            "pg_ctl start",
            self.log_path,
            self.timeout + 5,
        )

    def halt(self, *, kill: bool = False) -> None:
        """Stop but keep the cluster; ``kill=True`` is ``immediate`` mode (no checkpoint: a crash)."""
        if not self.data_dir.exists():
            return
        mode = "immediate" if kill else "fast"
        subprocess.run(
            _as_postgres(
                [str(POSTGRES_BIN_DIR / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=self.timeout + 5,
            check=False,
        )

    def restart(self, *, kill: bool = False) -> None:
        self.halt(kill=kill)
        self.start()

    def stop(self) -> None:
        _unregister(id(self))
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_postgres(
    database: str = "yiwang",
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    fsync: bool = False,
    timeout: float = 60.0,
) -> PostgresServer:
    """initdb a throw-away cluster, start it and create ``database``.

    ``fsync=False`` (the default) trades crash safety for speed; pass ``fsync=True`` for chaos runs that
    kill the server and check what survived.
    """
    _check_name(database)
    port = port or free_port()
    # The socket directory (-k) is the workdir: keep it short, Unix socket paths max out at 107 bytes.
    workdir = _make_workdir("yiwang-pg-", base_dir)
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres", group="postgres")
    server = PostgresServer(HOST, port, database, workdir, fsync, timeout)
    try:
        _run(
            _as_postgres(
                [
                    str(POSTGRES_BIN_DIR / "initdb"),
                    "-D",
                    str(server.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    # C collation: no dependence on which locales the machine has generated.
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            "initdb",
            server.log_path,
            timeout,
        )
        _register(id(server), server.stop)
        server.start()
        server.create_database(database)
    except BaseException:
        _unregister(id(server))
        server.halt(kill=True)
        log.error("postgres failed to start; files kept in %s", workdir)
        raise
    return server
