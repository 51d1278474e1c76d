"""The embedded time-series store: one SQLite file, same semantics as InfluxDB.

The standard library's sqlite3 is the default because it needs nothing installed or running: a
single-box community or a developer laptop gets a working platform from ``pip install`` alone, and
the file survives restarts. InfluxDB is the choice for volume.

Semantics copied from InfluxDB (both pass the same contract tests): a point is identified by
measurement + tag set (empty tags omitted) + timestamp; writing it again merges fields into the
stored point, newer values winning, so retries are idempotent. Points are validated with the same
rules as line protocol (:func:`series.lineprotocol.check_point`), and refused ones are reported
the same way (:class:`~series.lineprotocol.PartialWrite`, the valid points are written).
Unlike InfluxDB, a field may change type between points: SQLite keeps whatever JSON it is given.

Reads select a device by its community too (:func:`community_clause`) without a column of its own: the
``series`` text already holds the community tag in a canonical form, and the device index narrows a
read to one device's rows before that text is looked at. Files written before reads named the
community therefore keep working as they are, with no upgrade step to run or get wrong.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from series.lineprotocol import check_point, present_tags
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    series TEXT NOT NULL,          -- sorted non-empty tags as a JSON array of [key, value] pairs
    device TEXT NOT NULL,          -- the device tag ('' when absent), copied out for the index
    ts_ms INTEGER NOT NULL,
    fields TEXT NOT NULL,          -- JSON object
    PRIMARY KEY (measurement, series, ts_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_device ON points (measurement, device, ts_ms);
"""

# json_patch merges objects key by key, the incoming value winning: InfluxDB's field merge.
_UPSERT = """
INSERT INTO points (measurement, series, device, ts_ms, fields) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (measurement, series, ts_ms) DO UPDATE SET fields = json_patch(fields, excluded.fields)
"""


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def series_key(tags: Mapping[str, str]) -> str:
    """Canonical text of a tag set: JSON, so no separator in a tag can make two sets collide."""
    return _json(present_tags(tags))


def community_clause(community: str) -> tuple[str, str]:
    """SQL (one parameter) true for the rows of ``community`` ('': rows without a community tag).

    It looks for the pair ``["community","<id>"]`` in the series text. That text cannot appear by
    accident inside a tag: within a JSON string every ``"`` is escaped, so ``["`` only ever opens a
    [key, value] pair, and the closing ``"]`` ends exactly that value.
    """
    if community == "":
        return "instr(series, ?) = 0", '["community",'
    return "instr(series, ?) > 0", _json(["community", community])


def _community_of(series: str) -> str:
    return next((value for key, value in json.loads(series) if key == "community"), "")


class SQLiteStore:
    """A TimeSeriesStore in one SQLite file (``":memory:"`` works for tests)."""

    takes_lines = False  # it stores fields, not line protocol

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = str(path)
        # One connection behind a lock, shared by the paho network thread and FastAPI's threadpool:
        # writes serialise in SQLite anyway, and a single connection makes close() simple and
        # ":memory:" usable. Other processes (the API) can read the same file concurrently thanks to WAL.
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            with self._lock:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode is safe against application crashes and costs far fewer fsyncs
                # than FULL: it matters on a gateway's SD card. A power cut may lose the last commits.
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                # Locked database, full disk, I/O error, closed store: nothing wrong with the data.
                raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from exc

    def write(self, points: Sequence[Point | Line]) -> None:
        rows: list[tuple[str, str, str, int, str]] = []
        refused: list[str] = []
        for index, point in enumerate(points):
            if isinstance(point, str):
                refused.append(f"#{index}: the SQLite store takes points, not line protocol")
                continue
            try:
                check_point(point)
            except StoreRejected as exc:
                refused.append(f"#{index}: {exc}")
                continue
            rows.append(
                (
                    point.measurement,
                    series_key(point.tags),
                    point.tags.get("device", ""),
                    point.ts_ms,
                    json.dumps(dict(point.fields), ensure_ascii=False, separators=(",", ":")),
                )
            )
        if rows:
            with self._connection() as conn:
                # IMMEDIATE takes the write lock up front, so a busy database waits (busy timeout)
                # instead of failing half way through the batch.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_UPSERT, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        if refused:
            raise PartialWrite(
                f"refused {len(refused)} of {len(points)} points: " + "; ".join(refused[:10]),
                dropped=len(refused),
            )

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
        if limit <= 0:
            return []
        in_community, pair = community_clause(community)
        sql = (
            "SELECT ts_ms, fields FROM points WHERE measurement = ? AND device = ? AND ts_ms >= ?"  # noqa: S608
            f" AND {in_community}"
        )
        params: list[object] = [measurement, device, since_ms, pair]
        if until_ms is not None:
            sql += " AND ts_ms < ?"
            params.append(until_ms)
        sql += " ORDER BY ts_ms, series LIMIT ?"
        params.append(limit)
        with self._connection() as conn:
            found = conn.execute(sql, params).fetchall()
        rows = []
        for ts_ms, fields_json in found:
            fields: dict[str, Scalar] = json.loads(fields_json)
            rows.append(Row(ts_ms=int(ts_ms), fields=fields))
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
        in_community, pair = community_clause(community)
        path = '$."' + field.replace("\\", "\\\\").replace('"', '\\"') + '"'
        sql_fn = {"mean": "avg", "min": "min", "max": "max"}[fn]
        # Numbers only, as InfluxDB: JSON true would read as 1 otherwise. The window start is
        # floored towards minus infinity (Python's //, SQLite's % truncates) to match InfluxDB.
        sql = f"""
            SELECT ts_ms - (((ts_ms % :w) + :w) % :w) AS start, {sql_fn}(json_extract(fields, :path))
            FROM points
            WHERE measurement = :m AND device = :d AND ts_ms >= :since AND ts_ms < :until
              AND {in_community.replace("?", ":community")}
              AND json_type(fields, :path) IN ('integer', 'real')
            GROUP BY start ORDER BY start
        """  # noqa: S608 - sql_fn and in_community come from fixed tables, everything else is a parameter
        params = {"w": window_ms, "path": path, "m": measurement, "d": device, "since": since_ms}
        params |= {"until": until_ms, "community": pair}
        with self._connection() as conn:
            found = conn.execute(sql, params).fetchall()
        return [Bucket(int(start), float(value)) for start, value in found]

    def latest(self, *, measurement: str) -> dict[DeviceKey, Row]:
        # The newest point of each series; a device with several (it changed gateway or grid) keeps
        # its newest of those, ties going to the first series as in ``query``.
        sql = """
            SELECT series, device, ts_ms, fields FROM (
                SELECT series, device, ts_ms, fields,
                       row_number() OVER (PARTITION BY series ORDER BY ts_ms DESC) AS n
                FROM points WHERE measurement = ?
            ) WHERE n = 1 ORDER BY series
        """
        with self._connection() as conn:
            found = conn.execute(sql, (measurement,)).fetchall()
        latest: dict[DeviceKey, Row] = {}
        for series, device, ts, fields in found:
            key = (_community_of(series), device)
            if key not in latest or int(ts) > latest[key].ts_ms:
                latest[key] = Row(int(ts), json.loads(fields))
        return latest

    def ping(self) -> None:
        with self._connection() as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
