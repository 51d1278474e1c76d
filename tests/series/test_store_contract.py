"""One contract for every TimeSeriesStore: the embedded SQLite store and InfluxDB (real influxd).

Then what only one of them can show: InfluxDB's HTTP error mapping, batching and type conflicts; SQLite's
thread safety; and the store URLs of ``open_store``.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from series.factory import open_store
from series.influx import BATCH_LINES, InfluxStore, request_lines
from series.lineprotocol import encode_point
from series.sqlite import SQLiteStore
from series.store import (
    Aggregate,
    Bucket,
    PartialWrite,
    Point,
    Row,
    Scalar,
    StoreRejected,
    StoreUnavailable,
    TimeSeriesStore,
)
from yiwang.servers import InfluxDatabase, free_port

T0 = 1_700_000_000_000  # 2023-11-14, a plain millisecond timestamp


def pt(
    ts_ms: int, device: str = "d1", measurement: str = "env", community: str = "c1", **fields: Scalar
) -> Point:
    return Point(measurement, {"device": device, "community": community}, fields or {"v": 1.0}, ts_ms)


@pytest.fixture(
    params=["sqlite", pytest.param("influxdb", marks=pytest.mark.integration)],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        database: InfluxDatabase = request.getfixturevalue("influx_database")
        url = database.store_url
    opened = open_store(url)
    yield opened
    opened.close()


def query(
    store: TimeSeriesStore, device: str = "d1", measurement: str = "env", community: str = "c1", **kw: int
) -> list[Row]:
    since_ms = kw.pop("since_ms", 0)
    return store.query(measurement=measurement, community=community, device=device, since_ms=since_ms, **kw)


def aggregate(
    store: TimeSeriesStore,
    community: str = "c1",
    *,
    field: str = "v",
    fn: Aggregate = "mean",
    since_ms: int = T0,
    until_ms: int = T0 + 40_000,
) -> list[Bucket]:
    """Windows of 10 s of device d1's ``field`` in measurement env."""
    return store.aggregate(
        measurement="env",
        community=community,
        device="d1",
        field=field,
        fn=fn,
        window_ms=10_000,
        since_ms=since_ms,
        until_ms=until_ms,
    )


# --- the contract ---------------------------------------------------------------------------------


def test_round_trip_keeps_values_and_types(store: TimeSeriesStore) -> None:
    fields: dict[str, Scalar] = {"temp": 21.5, "whole": 3.0, "count": 7, "big": 2**62, "on": True}
    fields |= {"off": False, "state": "ok"}
    store.write([Point("env", {"device": "d1", "community": "c1"}, fields, T0)])

    rows = query(store)

    assert rows == [Row(T0, fields)]
    # == would accept 3 for 3.0 and 1 for True: the types themselves must survive.
    assert {k: type(v) for k, v in rows[0].fields.items()} == {k: type(v) for k, v in fields.items()}


def test_window_is_since_inclusive_until_exclusive(store: TimeSeriesStore) -> None:
    store.write([pt(T0 + i * 1000, v=float(i)) for i in range(5)])

    rows = query(store, since_ms=T0 + 1000, until_ms=T0 + 3000)

    assert [r.ts_ms for r in rows] == [T0 + 1000, T0 + 2000]
    assert [r.ts_ms for r in query(store, since_ms=T0 + 3000)] == [T0 + 3000, T0 + 4000]


def test_oldest_first_and_limit(store: TimeSeriesStore) -> None:
    store.write([pt(T0 + i, v=float(i)) for i in (4, 0, 3, 1, 2)])

    assert [r.ts_ms for r in query(store, limit=3)] == [T0, T0 + 1, T0 + 2]
    assert len(query(store, limit=1000)) == 5


def test_rewriting_a_point_is_idempotent(store: TimeSeriesStore) -> None:
    store.write([pt(T0, v=1.0), pt(T0 + 1, v=2.0)])
    store.write([pt(T0, v=1.0), pt(T0 + 1, v=2.0)])

    assert query(store) == [Row(T0, {"v": 1.0}), Row(T0 + 1, {"v": 2.0})]


def test_same_point_merges_fields_newer_wins(store: TimeSeriesStore) -> None:
    store.write([pt(T0, a=1.0, b=2.0)])
    store.write([pt(T0, b=20.0, c="x")])

    assert query(store) == [Row(T0, {"a": 1.0, "b": 20.0, "c": "x"})]


def test_same_point_twice_in_one_batch_merges(store: TimeSeriesStore) -> None:
    store.write([pt(T0, a=1.0), pt(T0, a=5.0, b=True)])

    assert query(store) == [Row(T0, {"a": 5.0, "b": True})]


def test_other_devices_and_measurements_are_not_returned(store: TimeSeriesStore) -> None:
    store.write([pt(T0, v=1.0), pt(T0, device="d2", v=2.0), pt(T0, measurement="power", v=3.0)])

    assert query(store) == [Row(T0, {"v": 1.0})]
    assert query(store, device="d2") == [Row(T0, {"v": 2.0})]
    assert query(store, measurement="power") == [Row(T0, {"v": 3.0})]
    assert query(store, device="nobody") == []
    assert query(store, measurement="never-written") == []


def test_empty_tag_is_the_same_as_no_tag(store: TimeSeriesStore) -> None:
    store.write([Point("env", {"device": "d1", "grid": "", "community": ""}, {"a": 1.0}, T0)])
    store.write([Point("env", {"device": "d1"}, {"b": 2.0}, T0)])
    store.write([pt(T0, v=3.0)])

    assert query(store, community="") == [Row(T0, {"a": 1.0, "b": 2.0})]
    assert query(store) == [Row(T0, {"v": 3.0})]


@pytest.mark.parametrize("other", ["c2", "c1x", "c", 'c1"]', "C1"])
def test_one_device_id_in_two_communities_is_two_devices(store: TimeSeriesStore, other: str) -> None:
    store.write([pt(T0 + s * 1000, v=float(s)) for s in range(3)])
    store.write([pt(T0 + s * 1000, community=other, v=100.0 + s) for s in range(2)])
    store.write([Point("env", {"device": "d1"}, {"v": -1.0}, T0 + 9000)])  # no community at all

    assert [r.fields["v"] for r in query(store)] == [0.0, 1.0, 2.0]
    assert [r.fields["v"] for r in query(store, community=other)] == [100.0, 101.0]
    assert [r.fields["v"] for r in query(store, community="")] == [-1.0]
    assert query(store, community="c9") == []
    assert aggregate(store) == [Bucket(T0, 1.0)]
    assert aggregate(store, community=other) == [Bucket(T0, 100.5)]
    assert aggregate(store, community="") == [Bucket(T0, -1.0)]
    assert store.latest(measurement="env") == {
        ("c1", "d1"): Row(T0 + 2000, {"v": 2.0}),
        (other, "d1"): Row(T0 + 1000, {"v": 101.0}),
        ("", "d1"): Row(T0 + 9000, {"v": -1.0}),
    }


SPECIAL_DEVICE = '门禁 1,楼=A "东" it\'s a\\b'
SPECIAL_STRINGS = ['say "hi", x=1 y', "back\\slash\\", "\\\\double", "中文 状态：正常", "'single'", ""]


def test_special_characters_survive(store: TimeSeriesStore) -> None:
    measurement = "环境 reading,v2"
    fields: dict[str, Scalar] = {f"s{i} k,=": text for i, text in enumerate(SPECIAL_STRINGS)}
    tags = {"device": SPECIAL_DEVICE, "位置": "3 号楼, 东", "community": "c1"}
    store.write(
        [Point(measurement, tags, fields, T0), Point(measurement, {"device": "a\\b"}, {"other": 1.0}, T0)]
    )

    assert query(store, device=SPECIAL_DEVICE, measurement=measurement) == [Row(T0, fields)]


def test_refused_points_are_reported_and_the_rest_written(store: TimeSeriesStore) -> None:
    batch = [pt(T0, v=1.0), pt(T0 + 1, v=float("nan")), pt(T0 + 2, s="two\nlines"), pt(T0 + 3, v=4.0)]

    with pytest.raises(PartialWrite) as caught:
        store.write(batch)

    assert caught.value.dropped == 2
    assert [r.ts_ms for r in query(store)] == [T0, T0 + 3]


def test_encoded_lines_are_written_by_a_store_that_takes_lines_and_refused_by_the_others(
    store: TimeSeriesStore,
) -> None:
    line = encode_point(pt(T0 + 1, v=2.5))
    if store.takes_lines:
        store.write([pt(T0, v=1.0), line])
        assert [(r.ts_ms, r.fields) for r in query(store)] == [(T0, {"v": 1.0}), (T0 + 1, {"v": 2.5})]
        return
    with pytest.raises(PartialWrite) as caught:  # the point is written, the line reported, not lost
        store.write([pt(T0, v=1.0), line])
    assert caught.value.dropped == 1 and "takes points" in str(caught.value)
    assert [r.ts_ms for r in query(store)] == [T0]


def test_empty_batch_and_zero_limit(store: TimeSeriesStore) -> None:
    store.write([])
    store.write([pt(T0)])

    assert query(store, limit=0) == []


@pytest.mark.parametrize(
    ("fn", "expected"),
    [("mean", [1.5, 5.0, 10.0]), ("min", [1.0, 4.0, 10.0]), ("max", [2.0, 6.0, 10.0])],
)
def test_aggregation_windows(store: TimeSeriesStore, fn: Aggregate, expected: list[float]) -> None:
    # Windows of 10 s from T0 (a multiple of 10 s): [1, 2] | [4, 5, 6] | (empty) | [10]
    values = {0: 1, 5: 2, 10: 4, 12: 5, 19: 6, 30: 10}
    store.write([pt(T0 + s * 1000, v=float(v), flag=True) for s, v in values.items()])
    store.write([pt(T0 + 1000, device="d2", v=100.0), pt(T0 + 40_000, v=99.0)])  # other device; outside

    buckets = aggregate(store, fn=fn)

    assert buckets == [Bucket(T0 + w, e) for w, e in zip((0, 10_000, 30_000), expected, strict=True)]
    assert aggregate(store, fn=fn, field="flag") == []  # booleans are not numbers


def test_aggregation_windows_align_to_the_epoch_not_to_since(store: TimeSeriesStore) -> None:
    store.write([pt(T0 + 4000, v=1.0), pt(T0 + 6000, v=3.0), pt(T0 + 12_000, v=5.0)])

    buckets = aggregate(store, since_ms=T0 + 5000, until_ms=T0 + 20_000)

    assert buckets == [Bucket(T0, 3.0), Bucket(T0 + 10_000, 5.0)]


def test_latest_per_device(store: TimeSeriesStore) -> None:
    store.write([pt(T0, v=1.0), pt(T0 + 5, v=2.0, state="ok"), pt(T0 + 3, device="d2", v=7.0)])
    store.write([pt(T0 + 9, device="d3", measurement="other", v=0.0)])

    latest = store.latest(measurement="env")

    assert latest == {
        ("c1", "d1"): Row(T0 + 5, {"v": 2.0, "state": "ok"}),
        ("c1", "d2"): Row(T0 + 3, {"v": 7.0}),
    }
    assert store.latest(measurement="nothing") == {}


def test_ping(store: TimeSeriesStore) -> None:
    store.ping()


# --- InfluxDB specifics (real influxd) ------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "identity"])
def test_influx_field_type_conflict_is_rejected_and_the_rest_written(
    influx_database: InfluxDatabase, gzip: bool
) -> None:
    with InfluxStore(influx_database.url, influx_database.database, gzip=gzip) as store:
        store.write([pt(T0, v=1.0)])

        with pytest.raises(StoreRejected, match="conflict") as caught:
            store.write([pt(T0 + 1, v=2.0), pt(T0 + 2, v="text"), pt(T0 + 3, v=4.0)])

        assert isinstance(caught.value, PartialWrite)
        assert caught.value.dropped == 1
        assert [r.ts_ms for r in query(store)] == [T0, T0 + 1, T0 + 3]


@pytest.mark.integration
@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "identity"])
def test_influx_splits_large_writes(influx_database: InfluxDatabase, gzip: bool) -> None:
    with InfluxStore(influx_database.url, influx_database.database, batch_lines=7, gzip=gzip) as store:
        store.write([pt(T0 + i, v=float(i)) for i in range(30)])

        assert [r.fields["v"] for r in query(store)] == [float(i) for i in range(30)]


@pytest.mark.integration
def test_influx_missing_database_is_unavailable_not_rejected(influx_database: InfluxDatabase) -> None:
    # A configuration problem: the data is fine, so it must be retried, not thrown away.
    with InfluxStore(influx_database.url, "no_such_db") as store:
        with pytest.raises(StoreUnavailable, match="not found"):
            store.write([pt(T0)])
        with pytest.raises(StoreUnavailable, match="not found"):
            query(store)


@pytest.mark.integration
def test_influx_retention_policy(influx_database: InfluxDatabase) -> None:
    with closing(open_store(f"{influx_database.store_url}?rp=autogen")) as store:
        store.write([pt(T0)])
        assert query(store) == [Row(T0, {"v": 1.0})]
    with closing(open_store(f"{influx_database.store_url}?rp=nope")) as store:
        with pytest.raises(StoreUnavailable, match="retention policy not found"):
            store.write([pt(T0)])
        with pytest.raises(StoreUnavailable, match="retention policy not found"):
            query(store)


def test_influx_down_is_unavailable() -> None:
    with InfluxStore(f"http://127.0.0.1:{free_port()}", "db", timeout=2.0) as store:
        with pytest.raises(StoreUnavailable):
            store.write([pt(T0)])
        with pytest.raises(StoreUnavailable):
            store.ping()
        with pytest.raises(StoreUnavailable):
            query(store)


def test_closed_stores_are_unavailable(tmp_path: Path) -> None:
    stores: list[TimeSeriesStore] = [SQLiteStore(tmp_path / "x.db"), InfluxStore("http://127.0.0.1:1", "db")]
    for store in stores:
        store.close()
        with pytest.raises(StoreUnavailable):
            store.ping()


Handler = Callable[[httpx.Request], httpx.Response]


def mock_store(handler: Handler, **kw: object) -> InfluxStore:
    return InfluxStore("http://influx.test:8086", "db", transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


def recording_store(**kw: object) -> tuple[InfluxStore, list[httpx.Request]]:
    """A store whose server accepts every write (204) and keeps the requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    return mock_store(handler, **kw), seen


def test_influx_write_request_shape() -> None:
    store, seen = recording_store(rp="week", token="s3cret")
    with store:
        store.write([pt(T0 + i) for i in range(12_001)])

    assert len(seen) == 2  # ~5,000 lines per request, all alike: 6,001 + 6,000
    first = seen[0]
    assert first.url.path == "/write"
    assert dict(first.url.params) == {"db": "db", "rp": "week", "precision": "ms"}
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Authorization"] == "Token s3cret"
    lines = gzip.decompress(first.content).decode().split("\n")
    assert len(lines) == 6001
    assert lines[0] == f"env,community=c1,device=d1 v=1.0 {T0}"
    assert len(gzip.decompress(seen[1].content).decode().split("\n")) == 6000


@pytest.mark.parametrize(
    ("total", "sizes"),
    [
        (1, [1]),
        (5000, [5000]),
        (6000, [6000]),  # not 5,000 + 1,000: every other request would be small
        (7499, [7499]),
        (7500, [3750, 3750]),
        (10_000, [5000, 5000]),
        (12_001, [6001, 6000]),
        (30_000, [5000] * 6),
    ],
)
def test_request_sizes_are_about_batch_lines_and_even(total: int, sizes: list[int]) -> None:
    size = request_lines(total, BATCH_LINES)
    assert [min(size, total - start) for start in range(0, total, size)] == sizes


def test_influx_write_uncompressed() -> None:
    store, seen = recording_store(gzip=False)
    with store:
        store.write([pt(T0 + i) for i in range(3)])

    (request,) = seen
    assert "Content-Encoding" not in request.headers
    assert request.content.decode().split("\n") == [
        f"env,community=c1,device=d1 v=1.0 {T0 + i}" for i in range(3)
    ]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, '{"error":"engine: cache full"}', StoreUnavailable),
        (503, "", StoreUnavailable),
        (429, '{"code":"too many requests"}', StoreUnavailable),
        (401, '{"error":"authorization failed"}', StoreUnavailable),
        (404, '{"error":"database not found: \\"db\\""}', StoreUnavailable),
        (400, '{"error":"unable to parse \'x\': missing fields"}', StoreRejected),
        (413, "too large", StoreRejected),
    ],
)
def test_influx_status_mapping(status: int, body: str, expected: type[Exception]) -> None:
    with mock_store(lambda _: httpx.Response(status, text=body)) as store, pytest.raises(expected) as caught:
        store.write([pt(T0)])
    assert type(caught.value) is expected  # a bare rejection: how much was written is unknown


def test_influx_partial_write_reports_dropped_count() -> None:
    message = 'partial write: field type conflict: input field \\"v\\" ... dropped=3'
    reply = httpx.Response(400, text=f'{{"error":"{message}"}}')
    with mock_store(lambda _: reply) as store, pytest.raises(PartialWrite, match="type conflict") as caught:
        store.write([pt(T0), pt(T0 + 1, v=float("inf"))])
    assert caught.value.dropped == 4  # 3 refused by the server + 1 never sent


def test_influx_2x_error_body_is_understood() -> None:
    body = '{"code":"unprocessable entity","message":"partial write: field type conflict dropped=1"}'
    with mock_store(lambda _: httpx.Response(422, text=body)) as store, pytest.raises(PartialWrite) as caught:
        store.write([pt(T0)])
    assert caught.value.dropped == 1


# --- SQLite specifics -----------------------------------------------------------------------------


def test_sqlite_is_thread_safe(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "threads.db") as store:

        def writer(device: str) -> None:
            for i in range(50):
                store.write([pt(T0 + i, device=device, v=float(i))])
                store.query(measurement="env", community="c1", device=device, since_ms=0)

        threads = [threading.Thread(target=writer, args=(f"d{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert all(len(query(store, device=f"d{n}")) == 50 for n in range(4))


def test_sqlite_data_survives_reopening(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "keep.db") as store:
        store.write([pt(T0, v=1.0)])
    with SQLiteStore(tmp_path / "keep.db") as store:
        assert query(store) == [Row(T0, {"v": 1.0})]


# --- open_store URLs ------------------------------------------------------------------------------


def test_open_store_sqlite_relative_creates_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/data/ts.db")
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "var" / "data" / "ts.db").exists()
    finally:
        store.close()


def test_open_store_sqlite_absolute_and_memory(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path}/a/b.db", "sqlite:///:memory:"):
        store = open_store(url)
        store.close()
        assert isinstance(store, SQLiteStore)
    assert (tmp_path / "a" / "b.db").exists()


@pytest.mark.parametrize(
    ("url", "base_url", "database", "rp", "gzip"),
    [
        # gzip=auto (the default): off for a server on this machine, on across a network
        ("influxdb://localhost/yiwang", "http://localhost:8086", "yiwang", None, False),
        ("influxdb://127.0.0.2:8086/yiwang", "http://127.0.0.2:8086", "yiwang", None, False),
        ("influxdb://10.0.0.5:9999/db?rp=week&token=abc", "http://10.0.0.5:9999", "db", "week", True),
        (
            "influxdbs://cloud.example:443/bucket?token=t%2Bx",
            "https://cloud.example:443",
            "bucket",
            None,
            True,
        ),
        ("influxdb://user:pw@[::1]:8086/db", "http://[::1]:8086", "db", None, False),
        ("influxdb://localhost/db?gzip=on", "http://localhost:8086", "db", None, True),
        ("influxdb://tsdb.lan/db?gzip=off", "http://tsdb.lan:8086", "db", None, False),
        ("influxdb://tsdb.lan/db?gzip=auto", "http://tsdb.lan:8086", "db", None, True),
    ],
)
def test_open_store_influx(url: str, base_url: str, database: str, rp: str | None, gzip: bool) -> None:
    store = open_store(url)
    try:
        assert isinstance(store, InfluxStore)
        assert (store.base_url, store.database, store.rp, store.gzip) == (base_url, database, rp, gzip)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x/y", "unsupported"),
        ("ts.db", "unsupported"),
        ("sqlite://relative.db", "sqlite:///"),
        ("influxdb://host:8086/", "database"),
        ("influxdb://host/db?retention=x", "unknown InfluxDB store URL parameters"),
        ("influxdb://host:port/db", "bad port"),
        ("influxdb://host/db?gzip=yes", "gzip='yes', expected one of auto, on, off"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_open_store_hides_secrets_in_errors() -> None:
    with pytest.raises(ValueError, match=r"token=\*\*\*") as caught:
        open_store("influxdb://host:8086/?token=hunter2")
    assert "hunter2" not in str(caught.value)
