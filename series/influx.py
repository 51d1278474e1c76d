"""InfluxDB through the v1-compatible HTTP API (``/write``, ``/query``, ``/ping``).

That API is served by InfluxDB 1.x, 2.x (DBRP mapping) and 3.x Core alike, so one client covers all
three; Debian's 1.6.7 speaks nothing else.

Error mapping, from the caller's point of view ("does retrying the same batch help?"):

- connection errors, timeouts, 5xx, 408 and 429 → StoreUnavailable (retry later);
- 401, 403 and 404 (bad token, missing database) → StoreUnavailable too: the data is fine and a retry
  succeeds once the configuration is fixed, so it must not be thrown away as rejected content;
- any other 4xx → StoreRejected with the server's message. A "partial write ... dropped=N" answer
  means the other points **were** written; it is raised as :class:`PartialWrite` with ``dropped``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from gzip import compress as gzip_compress
from types import TracebackType
from typing import Any

import httpx

from common.redact import redact
from series.lineprotocol import encode_points
from series.store import (
    Aggregate,
    Bucket,
    DeviceKey,
    Line,
    PartialWrite,
    Point,
    Row,
    Scalar,
    StoreRejected,
    StoreUnavailable,
    check_aggregate,
)

log = logging.getLogger(__name__)

BATCH_LINES = 5000  # ~5,000 lines per request is InfluxDB's advice and measured best here
# Statuses that say nothing about the batch itself: retrying later (or after fixing config) helps.
_RETRYABLE_4XX = frozenset({401, 403, 404, 408, 429})
_DROPPED = re.compile(r"dropped=(\d+)")


def request_lines(total: int, batch_lines: int) -> int:
    """Lines per request for ``total`` lines: about ``batch_lines``, in requests of equal size.

    Cutting 6,000 lines into 5,000 + 1,000 would make every other request small, and a request has a
    fixed cost in InfluxDB (HTTP, a WAL write and sync) whatever its size: 6,000 go as one, 8,000 as
    2 × 4,000, 12,001 as 2 × 6,001.
    """
    requests = max(1, round(total / batch_lines))
    return max(1, -(-total // requests))


def quote_identifier(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def device_condition(community: str, device: str) -> str:
    """InfluxQL selecting one device of one community (a tag compared with '' matches its absence)."""
    return (
        f"{quote_identifier('community')} = {quote_string(community)} "
        f"AND {quote_identifier('device')} = {quote_string(device)}"
    )


def _error_text(response: httpx.Response) -> str:
    """The server's reason, redacted: a proxy in front of InfluxDB may echo the request URL."""
    return redact(_server_reason(response))


def _server_reason(response: httpx.Response) -> str:
    # 1.x answers {"error": ...}, 2.x {"code": ..., "message": ...}; fall back to the raw body.
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return response.text.strip()


def _cast(value: Any, field_type: str | None) -> Scalar:
    # JSON loses float-vs-integer (a float 1.0 comes back as 1); SHOW FIELD KEYS tells which it was.
    if field_type == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if field_type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class InfluxStore:
    """A TimeSeriesStore on one InfluxDB database (and optionally one retention policy)."""

    takes_lines = True

    def __init__(
        self,
        base_url: str,
        database: str,
        *,
        rp: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        batch_lines: int = BATCH_LINES,
        gzip: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``gzip``: compress request bodies. Worth it across a network (11x smaller); on the same
        machine it only costs CPU — more in InfluxDB (~0.5 µs per point to decompress) than here."""
        if not database:
            raise ValueError("an InfluxDB database name is required")
        self.base_url = base_url.rstrip("/")
        # What messages and logs name: a base URL may carry userinfo, which httpx sends as Basic auth.
        self.display_url = redact(self.base_url)
        self.database = database
        self.rp = rp or None
        self.batch_lines = batch_lines
        self.gzip = gzip
        # Built once: httpx parses and merges a URL and its parameters on every request otherwise
        # (~0.3 ms of CPU per write here).
        params = {"db": database, "precision": "ms", **({"rp": self.rp} if self.rp else {})}
        self._write_url = httpx.URL(f"{self.base_url}/write", params=params)
        self._write_headers = httpx.Headers(
            {"Content-Type": "text/plain; charset=utf-8", **({"Content-Encoding": "gzip"} if gzip else {})}
        )
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            auth=auth,
            # A short connect timeout: a dead server should surface fast as StoreUnavailable.
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"InfluxStore({self.display_url!r}, {self.database!r}, rp={self.rp!r}, gzip={self.gzip})"

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            # httpx names the request URL in some errors: redacted with the rest of the message.
            raise StoreUnavailable(redact(f"InfluxDB at {self.display_url} unreachable: {exc!r}")) from exc
        except RuntimeError as exc:  # httpx raises this once the client is closed
            raise StoreUnavailable(redact(f"InfluxDB client closed: {exc}")) from exc

    def _raise_unavailable(self, response: httpx.Response) -> None:
        if response.status_code >= 500 or response.status_code in _RETRYABLE_4XX:
            reason = _error_text(response)
            raise StoreUnavailable(
                f"InfluxDB at {self.display_url} answered HTTP {response.status_code}: {reason}"
            )

    def write(self, points: Sequence[Point | Line]) -> None:
        lines, refused = encode_points(points)
        dropped = len(refused)
        problems = list(refused)
        unknown_loss = False
        size = request_lines(len(lines), self.batch_lines)
        for start in range(0, len(lines), size):
            body = "\n".join(lines[start : start + size]).encode("utf-8")
            if self.gzip:
                # Level 1: line protocol repeats itself so much that it compresses as well (11x on
                # ingest's batches) as level 3, at half the CPU.
                body = gzip_compress(body, compresslevel=1)
            response = self._request("POST", self._write_url, content=body, headers=self._write_headers)
            if response.is_success:
                continue
            self._raise_unavailable(response)
            # Content refused. Later batches are still written: a retry would refuse this one again.
            text = _error_text(response)
            match = _DROPPED.search(text)
            if match:
                dropped += int(match.group(1))
            else:
                unknown_loss = True
            problems.append(f"HTTP {response.status_code}: {text}")
        if not problems:
            return
        message = f"InfluxDB refused part of a batch of {len(points)} points: " + "; ".join(problems[:10])
        log.debug("%s", message)
        if unknown_loss:
            raise StoreRejected(message)
        raise PartialWrite(message, dropped=dropped)

    def query(
        self,
        *,
        measurement: str,
        community: str,
        device: str,
        since_ms: int,
        until_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Row]:
        if limit <= 0:  # LIMIT 0 means "no limit" to InfluxQL
            return []
        source = quote_identifier(measurement)
        if self.rp:
            source = f"{quote_identifier(self.rp)}.{source}"
        where = f"{device_condition(community, device)} AND time >= {int(since_ms)}ms"
        if until_ms is not None:
            where += f" AND time < {int(until_ms)}ms"
        # Two statements, one round trip: the field types restore float-vs-integer lost in JSON, and
        # *::field leaves the tag columns out. Every name and value above is quoted/escaped or an int.
        statement = (
            f"SHOW FIELD KEYS FROM {source}; "  # noqa: S608
            f"SELECT *::field FROM {source} WHERE {where} ORDER BY time ASC LIMIT {int(limit)}"
        )
        results = self._query(statement)
        if len(results) < 2:
            # A multi-statement query that fails validation says only "not executed"; the first
            # statement alone says why (database or retention policy not found, ...).
            self._query(f"SHOW FIELD KEYS FROM {source}")
            raise StoreRejected(f"InfluxDB did not execute the query: {results}")
        field_types: dict[str, str] = {}
        for series in results[0].get("series", []):
            field_types.update((key, kind) for key, kind in series["values"])
        rows: list[Row] = []
        for series in results[1].get("series", []):
            columns: list[str] = series["columns"]
            for values in series["values"]:
                fields = {
                    column: _cast(value, field_types.get(column))
                    for column, value in zip(columns[1:], values[1:], strict=True)
                    if value is not None
                }
                rows.append(Row(ts_ms=int(values[0]), fields=fields))
        return rows

    def aggregate(
        self,
        *,
        measurement: str,
        community: str,
        device: str,
        field: str,
        fn: Aggregate,
        window_ms: int,
        since_ms: int,
        until_ms: int,
    ) -> list[Bucket]:
        check_aggregate(fn, window_ms)
        window = f"time >= {int(since_ms)}ms AND time < {int(until_ms)}ms"
        where = f"{device_condition(community, device)} AND {window}"
        statement = (
            f"SELECT {fn}({quote_identifier(field)}) FROM {self._source(measurement)} "  # noqa: S608
            f"WHERE {where} GROUP BY time({int(window_ms)}ms) fill(none)"
        )
        try:
            results = self._query(statement)
        except StoreRejected as err:
            if "iterator type" in str(err):  # mean() of a boolean or string field: no numbers, as SQLite
                return []
            raise
        buckets = []
        for series in results[0].get("series", []):
            for start, value in series["values"]:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    buckets.append(Bucket(int(start), float(value)))
        return buckets

    def latest(self, *, measurement: str) -> dict[DeviceKey, Row]:
        source = self._source(measurement)
        # LIMIT applies per GROUP BY series: the newest point of each device, in one round trip.
        group = f"{quote_identifier('community')}, {quote_identifier('device')}"
        statement = (
            f"SHOW FIELD KEYS FROM {source}; "  # noqa: S608
            f"SELECT *::field FROM {source} GROUP BY {group} ORDER BY time DESC LIMIT 1"
        )
        results = self._query(statement)
        if len(results) < 2:
            raise StoreRejected(f"InfluxDB did not execute the query: {results}")
        field_types: dict[str, str] = {}
        for series in results[0].get("series", []):
            field_types.update((key, kind) for key, kind in series["values"])
        latest: dict[DeviceKey, Row] = {}
        for series in results[1].get("series", []):
            tags = series.get("tags", {})
            key = (tags.get("community", ""), tags.get("device", ""))
            columns: list[str] = series["columns"]
            values = series["values"][0]
            fields = {
                column: _cast(value, field_types.get(column))
                for column, value in zip(columns[1:], values[1:], strict=True)
                if value is not None
            }
            latest[key] = Row(ts_ms=int(values[0]), fields=fields)
        return latest

    def _source(self, measurement: str) -> str:
        source = quote_identifier(measurement)
        return f"{quote_identifier(self.rp)}.{source}" if self.rp else source

    def _query(self, statement: str) -> list[dict[str, Any]]:
        response = self._request("POST", "/query", data={"db": self.database, "q": statement, "epoch": "ms"})
        if not response.is_success:
            self._raise_unavailable(response)
            raise StoreRejected(
                f"InfluxDB refused a query (HTTP {response.status_code}): {_error_text(response)}"
            )
        try:
            results: list[dict[str, Any]] = response.json()["results"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreUnavailable(f"InfluxDB answered a query with unexpected JSON: {exc!r}") from exc
        for result in results:
            if "error" in result and result["error"] != "not executed":
                error = str(result["error"])
                if "not found" in error:  # database or retention policy missing: configuration
                    raise StoreUnavailable(f"InfluxDB query failed: {error}")
                raise StoreRejected(f"InfluxDB query failed: {error}")
        return results

    def ping(self) -> None:
        response = self._request("GET", "/ping")
        if not response.is_success:
            raise StoreUnavailable(f"InfluxDB ping answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
