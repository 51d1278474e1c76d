"""A throw-away PostgreSQL 15 cluster. ``pg_ctl`` daemonises it, so it is no :class:`Process`."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yiwang.servers.process import (
    HOST,
    ServerHandle,
    ServerStartError,
    check_name,
    free_port,
    log_tail,
    make_workdir,
    register,
    unique_name,
    unregister,
)

log = logging.getLogger(__name__)

POSTGRES_BIN_DIR = Path("/usr/lib/postgresql/15/bin")


def postgres_available() -> bool:
    return (POSTGRES_BIN_DIR / "initdb").exists()


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
class PostgresServer(ServerHandle):
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
        name = check_name(name or unique_name())
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends sessions a test forgot to close instead of failing.
        self._admin(f'DROP DATABASE IF EXISTS "{check_name(name)}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        import psycopg  # the server extra; imported late so Mosquitto-only users do not need it

        with psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(statement.encode())

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses={self.host}"
        if not self.fsync:
            # Throw-away data: skipping fsync makes CREATE DATABASE and commits much faster.
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

    def stop(self, *, keep: bool = False) -> None:
        """Stop for good and delete the cluster (unless ``keep``)."""
        unregister(id(self))
        self.halt()
        if not keep:
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
    kill the server and check what survived. As root, ``base_dir`` must be traversable by the postgres
    user, and short: the cluster's Unix socket lives in the directory (paths max out at 107 bytes).
    """
    check_name(database)
    if not postgres_available():
        raise ServerStartError(f"PostgreSQL 15 not found in {POSTGRES_BIN_DIR}")
    port = port or free_port()
    workdir = make_workdir("yiwang-pg-", base_dir)
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
        register(id(server), server.stop)
        server.start()
        server.create_database(database)
    except BaseException:
        unregister(id(server))
        server.halt(kill=True)
        log.error("postgres failed to start; files kept in %s", workdir)
        raise
    return server
