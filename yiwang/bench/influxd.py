"""A throw-away influxd 1.x for benchmarks (the package cannot import tests/servers.py; same recipe)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx

from yiwang.bench.stack import free_port

_CONFIG = """\
reporting-disabled = true
# The RPC (backup/restore) port; its default 8088 would clash between parallel servers.
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  # One access-log line per write costs time under benchmark load.
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


def influxd_binary() -> str | None:
    return shutil.which("influxd") or shutil.which("influxd", path="/usr/bin:/usr/sbin")


def influx_query(
    url: str, statement: str, database: str | None = None, *, http: httpx.Client | None = None
) -> list[dict[str, object]]:
    """Run InfluxQL; RuntimeError with the server's text when it fails. Pass ``http`` when polling:
    a new client per call costs milliseconds of CPU (its TLS context), taken from what is measured."""
    data = {"q": statement, **({"db": database} if database else {})}
    post = http.post if http is not None else httpx.post
    response = post(f"{url}/query", data=data, timeout=60)
    body = response.json()
    results: list[dict[str, object]] = body.get("results", [])
    if response.status_code != 200 or any("error" in r for r in results):
        raise RuntimeError(f"influxd refused {statement!r}: {response.text}")
    return results


def influxd_command(workdir: Path) -> tuple[list[str], str]:
    """The command line of a throw-away influxd keeping its data in ``workdir``, and its base URL."""
    binary = influxd_binary()
    if binary is None:
        raise RuntimeError("influxd not found: install Debian's influxdb package")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "influxd.conf"
    conf.write_text(_CONFIG.format(rpc_port=free_port(), workdir=workdir, port=port), encoding="utf-8")
    return [binary, "-config", str(conf)], f"http://127.0.0.1:{port}"


class RunningInfluxd(NamedTuple):
    url: str
    pid: int


@contextlib.contextmanager
def running_influxd(workdir: Path, timeout: float = 30.0) -> Iterator[RunningInfluxd]:
    """Start influxd in ``workdir``; yields its base URL and pid, and stops it (SIGTERM, then SIGKILL)
    after."""
    argv, url = influxd_command(workdir)
    with (workdir / "influxd.log").open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"influxd exited with code {proc.returncode}; see {workdir}/influxd.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=1).status_code == 204:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"influxd not ready after {timeout:.0f}s; see {workdir}/influxd.log")
            time.sleep(0.1)
        yield RunningInfluxd(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
