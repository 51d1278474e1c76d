"""A throw-away influxd 1.x, and InfluxQL over its HTTP API."""

from __future__ import annotations

import shutil
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from yiwang.servers.process import (
    HOST,
    Process,
    ProcessHandle,
    ServerStartError,
    check_name,
    free_port,
    make_workdir,
    start_registered,
    unique_name,
)

INFLUXD_BIN = (
    shutil.which("influxd") or shutil.which("influxd", path="/usr/bin:/usr/sbin") or "/usr/bin/influxd"
)


def influx_query(
    url: str, statement: str, database: str | None = None, *, http: httpx.Client | None = None
) -> list[dict[str, object]]:
    """Run InfluxQL; RuntimeError with the server's text when it fails. Pass ``http`` when polling:
    a new client per call costs milliseconds of CPU (its TLS context), taken from what is measured."""
    data = {"q": statement, **({"db": database} if database else {})}
    post = http.post if http is not None else httpx.post
    response = post(f"{url}/query", data=data, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"influxd refused {statement!r}: HTTP {response.status_code} {response.text}")
    # /query answers 200 even when the statement failed; the error sits in the JSON body.
    results: list[dict[str, object]] = response.json().get("results", [])
    if any("error" in r for r in results):
        raise RuntimeError(f"influxd refused {statement!r}: {response.text}")
    return results


def _pings(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=1.0).status_code == 204
    except httpx.HTTPError:
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
class InfluxServer(ProcessHandle):
    url: str
    database: str
    host: str
    port: int
    workdir: Path
    _process: Process = field(repr=False, compare=False)

    @property
    def store_url(self) -> str:
        return InfluxDatabase(self.url, self.database).store_url

    def create_database(self, name: str | None = None) -> InfluxDatabase:
        """Create (idempotently) a database; a unique name when none is given."""
        name = check_name(name or unique_name())
        influx_query(self.url, f'CREATE DATABASE "{name}"')
        return InfluxDatabase(self.url, name)

    def drop_database(self, name: str) -> None:
        influx_query(self.url, f'DROP DATABASE "{check_name(name)}"')


def start_influxd(
    database: str = "yiwang",
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    timeout: float = 30.0,
) -> InfluxServer:
    """Start a private influxd 1.x and create ``database`` on it."""
    check_name(database)
    if not Path(INFLUXD_BIN).exists():
        raise ServerStartError("influxd not found: install Debian's influxdb package")
    port = port or free_port()
    rpc_port = free_port()
    workdir = make_workdir("yiwang-influxd-", base_dir)
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
    process = Process(
        "influxd",
        [INFLUXD_BIN, "-config", str(config_path)],
        workdir / "influxd.log",
        ready=lambda: _pings(url),
        timeout=timeout,
    )
    server = InfluxServer(url, database, HOST, port, workdir, process)
    start_registered(process, workdir, server.stop)
    try:
        server.create_database(database)
    except BaseException:
        server.stop()
        raise
    return server
