"""Open a time-series store from a URL (the ``store_url`` setting).

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's convention: what
  follows ``sqlite:///`` is the path), ``sqlite:///:memory:``. Parent directories are created.
- ``influxdb://[user:password@]host[:port]/database[?rp=POLICY&token=TOKEN&gzip=auto|on|off]`` over
  HTTP, and ``influxdbs://...`` over HTTPS. The port defaults to 8086. ``gzip=auto`` (the default)
  compresses writes unless the server is on this machine (a loopback address): across a network the
  bodies are 11x smaller; on loopback compressing only costs CPU, mostly InfluxDB's (it decompresses
  at ~0.5 µs per point; its write ceiling here is typically 15–30 % higher uncompressed).
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from common.redact import redact
from series.influx import InfluxStore
from series.sqlite import SQLiteStore
from series.store import TimeSeriesStore

log = logging.getLogger(__name__)

_SCHEMES = "sqlite:///PATH, influxdb://HOST[:PORT]/DATABASE or influxdbs://HOST[:PORT]/DATABASE"
_INFLUX_PARAMS = frozenset({"rp", "token", "gzip"})
_GZIP_CHOICES = ("auto", "on", "off")


def open_store(url: str) -> TimeSeriesStore:
    """The store a URL names; ValueError for a URL it cannot mean."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        return _open_sqlite(url)
    if scheme in ("influxdb", "influxdbs"):
        return _open_influx(url, https=scheme == "influxdbs")
    raise ValueError(f"unsupported time-series store URL {redact(url)!r}: expected {_SCHEMES}")


def _open_sqlite(url: str) -> SQLiteStore:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix:
        raise ValueError(f"SQLite store URL must look like sqlite:///path/to/file.db, got {redact(url)!r}")
    path = unquote(url[len(prefix) :].partition("?")[0])
    if path == ":memory:":
        return SQLiteStore(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log.info("time-series store: SQLite file %s", Path(path).resolve())
    return SQLiteStore(path)


def _open_influx(url: str, *, https: bool) -> InfluxStore:
    parts = urlsplit(url)
    database = unquote(parts.path.strip("/"))
    if not parts.hostname or not database or "/" in database:
        raise ValueError(
            f"InfluxDB store URL must look like influxdb://host:port/database, got {redact(url)!r}"
        )
    params = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(params) - _INFLUX_PARAMS
    if unknown:
        known = ", ".join(sorted(_INFLUX_PARAMS))
        raise ValueError(f"unknown InfluxDB store URL parameters {sorted(unknown)}; known: {known}")
    gzip_choice = params.get("gzip", ["auto"])[-1]
    if gzip_choice not in _GZIP_CHOICES:
        raise ValueError(
            f"InfluxDB store URL: gzip={gzip_choice!r}, expected one of {', '.join(_GZIP_CHOICES)}"
        )
    try:
        port = parts.port or 8086
    except ValueError as exc:  # a port that is not a number
        raise ValueError(f"bad port in InfluxDB store URL {redact(url)!r}") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base_url = f"{'https' if https else 'http'}://{host}:{port}"
    gzip = gzip_choice == "on" or (gzip_choice == "auto" and not is_loopback(parts.hostname))
    log.info(
        "time-series store: InfluxDB %s database %s (gzip %s)", base_url, database, "on" if gzip else "off"
    )
    return InfluxStore(
        base_url,
        database,
        rp=params.get("rp", [""])[-1] or None,
        token=params.get("token", [""])[-1] or None,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        gzip=gzip,
    )


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: the server is on this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: assume it is across a network
        return False
