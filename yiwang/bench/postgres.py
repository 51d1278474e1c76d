"""A throw-away PostgreSQL cluster for benchmarks (the test fixtures have their own in tests/servers.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from yiwang.bench.stack import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    return (BIN / "initdb").exists()


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def run(argv: list[str]) -> None:
    subprocess.run(_as_postgres(argv), check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yields the SQLAlchemy URL of database ``bench`` on a fresh cluster; removes it afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="yw-pg-"))  # short: the socket path must stay < 107 bytes
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres", group="postgres")
    data, port = workdir / "data", free_port()
    try:
        run(
            [
                str(BIN / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        options = (
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        )
        run([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-o", options, "-w", "start"])
        run([str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(workdir, ignore_errors=True)
