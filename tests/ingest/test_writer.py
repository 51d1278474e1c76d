"""BatchWriter: what ingest stores, dead-letters and acknowledges, with faults injected at the store."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from common.consumer import Inbound
from common.db import make_engine
from contract.catalog import Catalog, load_catalog
from ingest.deadletters import DeadLetterStore
from ingest.service import BatchWriter
from ingest.spool import DiskSpool
from series.sqlite import SQLiteStore
from series.store import Point, Row, StoreRejected, StoreUnavailable
from tests.platform import wait_for

CONFIG = Path(__file__).resolve().parents[2] / "config"
TOPIC = "yiwang/v1/zhuganxiang/gw-01/telemetry"
TS = 1764183600000


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


@pytest.fixture
def dead(tmp_path: Path) -> Iterator[DeadLetterStore]:
    db = make_engine(f"sqlite:///{tmp_path}/yiwang.db")
    yield DeadLetterStore(db)
    db.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "series.db")
    yield store
    store.close()


def message(seq: int, device: str = "wl-01", mid: int = 0, topic: str = TOPIC, **values: object) -> Inbound:
    doc = {
        "seq": seq,
        "readings": [{"device": device, "ts": TS + seq, "values": values or {"level_cm": 12.5}}],
    }
    return Inbound(mid=mid or seq, qos=1, topic=topic, payload=json.dumps(doc).encode())


def levels(store: SQLiteStore, device: str = "wl-01") -> list[Row]:
    return store.query(measurement="water.level", community="zhuganxiang", device=device, since_ms=TS - 1)


class FlakyStore:
    """Fault injection at the store boundary: unavailable for the first ``outages`` writes,
    and refusing every point of ``refuse_device``."""

    def __init__(self, inner: SQLiteStore, outages: int = 0, refuse_device: str | None = None) -> None:
        self.inner, self.outages, self.refuse_device, self.calls = inner, outages, refuse_device, 0

    def write(self, points: Sequence[Point]) -> None:
        self.calls += 1
        if self.outages > 0:
            self.outages -= 1
            raise StoreUnavailable("connection refused")
        if any(p.tags["device"] == self.refuse_device for p in points):
            raise StoreRejected(f"field type conflict on {self.refuse_device}")
        self.inner.write(points)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def writer(
    catalog: Catalog, store: object, dead: DeadLetterStore, stop: threading.Event | None = None
) -> BatchWriter:
    return BatchWriter(catalog=catalog, store=store, dead=dead, stop=stop or threading.Event())  # type: ignore[arg-type]


def test_valid_readings_are_stored_with_profile_types_and_tags(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    assert writer(catalog, store, dead).process([message(1, level_cm=72)])
    [row] = levels(store)
    assert row.fields == {"level_cm": 72.0}
    assert type(row.fields["level_cm"]) is float  # an int on the wire is stored as the profile's float
    assert dead.count() == 0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (Inbound(1, 1, TOPIC, b"{not json"), "not valid JSON"),
        (
            message(1, device="ghost-1"),
            "readings.0.device: unknown device 'ghost-1' on gateway zhuganxiang/gw-01",
        ),
        (message(1, device="wl-03"), "unknown device 'wl-03' on gateway zhuganxiang/gw-01"),
        (
            message(1, level_cm=900),
            "readings.0.values.level_cm=900.0 outside the valid range 0.0..500.0 cm (wl-01)",
        ),
        (message(1, level_cm="high"), "readings.0.values.level_cm: expected a number, got 'high' (wl-01)"),
        (message(1, depth=3), "readings.0.values.depth: not a field of water.level@1"),
        (message(1, topic="yiwang/v1/zhuganxiang/gw-01/event"), "events: Field required"),
        (message(1, topic="yiwang/v1/zhuganxiang/GW/telemetry"), "invalid gateway id 'GW'"),
    ],
)
def test_bad_input_is_dead_lettered_with_its_reason_and_does_not_block_the_next(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore, bad: Inbound, reason: str
) -> None:
    assert writer(catalog, store, dead).process([bad, message(2)])
    [letter] = dead.latest()
    assert reason in letter.reason
    assert letter.payload == bad.payload and letter.topic == bad.topic
    assert [r.fields for r in levels(store)] == [{"level_cm": 12.5}]


def test_store_outage_is_retried_before_anything_is_acknowledged(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    flaky = FlakyStore(store, outages=2)
    assert writer(catalog, flaky, dead).process([message(1), message(2)])
    assert flaky.calls == 3
    assert len(levels(store)) == 2


def test_stopping_during_an_outage_leaves_the_batch_unacknowledged(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    stop = threading.Event()
    stop.set()
    assert not writer(catalog, FlakyStore(store, outages=1), dead, stop).process([message(1)])
    assert levels(store) == [] and dead.count() == 0


def test_one_refused_message_does_not_cost_its_neighbours(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    flaky = FlakyStore(store, refuse_device="wl-02")
    batch = [message(1), message(2, device="wl-02"), message(3)]
    assert writer(catalog, flaky, dead).process(batch)
    assert len(levels(store)) == 2
    [letter] = dead.latest()
    assert letter.reason == "rejected by the time-series store: field type conflict on wl-02"


def test_duplicates_and_gaps_are_counted_from_seq(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    w = writer(catalog, store, dead)
    for batch in ([message(1), message(2)], [message(2)], [message(5)]):
        assert w.process(batch)
    assert (w.counters.duplicates, w.counters.gaps, w.counters.messages) == (1, 2, 4)
    assert len(levels(store)) == 3  # the redelivered message overwrote its own point


def test_an_outage_goes_to_the_disk_spool_and_drains_when_the_store_returns(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore, tmp_path: Path
) -> None:
    stop = threading.Event()
    flaky = FlakyStore(store, outages=2)  # both quick attempts fail: the batch is spooled
    spool = DiskSpool(tmp_path / "spool")
    w = BatchWriter(catalog=catalog, store=flaky, dead=dead, stop=stop, spool=spool)  # type: ignore[arg-type]
    assert w.process([message(1), message(2)])  # acknowledged: the points are on disk
    assert levels(store) == [] and spool.depth_points == 2
    assert w.process([message(3)])  # the spool is not empty: new points queue behind the old
    assert spool.depth_points == 3
    assert w.metrics.spool_points._value.get() == 3
    drainer = threading.Thread(target=w.drain)
    drainer.start()
    try:
        wait_for(lambda: spool.depth_points == 0, 10, "the spool drained")
    finally:
        stop.set()
        drainer.join(10)
    assert [r.ts_ms for r in levels(store)] == [TS + 1, TS + 2, TS + 3]
    assert w.metrics.spool_points._value.get() == 0


def test_a_refused_point_is_found_by_bisection_not_by_one_write_per_message(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    flaky = FlakyStore(store, refuse_device="wl-02")
    batch = [message(seq) for seq in range(1, 65)]
    batch[40] = message(41, device="wl-02")
    w = writer(catalog, flaky, dead)
    assert w.process(batch)
    assert len(levels(store)) == 63
    [letter] = dead.latest()
    assert letter.payload == batch[40].payload
    assert flaky.calls <= 2 * 7 + 1  # log2(64) levels, two halves each, plus the first try
    assert w.metrics.dead_letters.labels(reason="store_rejected")._value.get() == 1


def test_late_messages_close_gaps_instead_of_counting_as_duplicates(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    w = writer(catalog, store, dead)
    for batch in ([message(1)], [message(4)], [message(3)], [message(2)], [message(3)]):
        assert w.process(batch)  # pipelined batches can finish out of order
    assert (w.counters.gaps, w.counters.duplicates) == (0, 1)


def test_a_spooled_segment_the_store_refuses_goes_whole_to_the_dead_letters(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore, tmp_path: Path
) -> None:
    stop = threading.Event()
    spool = DiskSpool(tmp_path / "spool")
    flaky = FlakyStore(store, outages=2, refuse_device="wl-02")
    w = BatchWriter(catalog=catalog, store=flaky, dead=dead, stop=stop, spool=spool)  # type: ignore[arg-type]
    assert w.process([message(1, device="wl-02")])  # spooled during the outage
    drainer = threading.Thread(target=w.drain)
    drainer.start()
    try:
        wait_for(lambda: spool.depth_points == 0, 10, "the spool drained")
    finally:
        stop.set()
        drainer.join(10)
    [letter] = dead.latest()
    assert letter.topic.startswith("spool:") and "field type conflict on wl-02" in letter.reason
    assert b"wl-02" in letter.payload


EVENT_TOPIC = "yiwang/v1/zhuganxiang/gw-01/event"


def event_message(seq: int, device: str = "cam-01", **attrs: object) -> Inbound:
    event = {
        "device": device,
        "ts": TS + seq,
        "id": "6f1c2a3e-0c1b-4c8e-9a57-2f3b9a1d4e55",
        "kind": "camera.motion",
        "phase": "start",
        "attrs": attrs or {"zone": "fire-lane", "score": 0.8},
    }
    return Inbound(
        mid=seq, qos=1, topic=EVENT_TOPIC, payload=json.dumps({"seq": seq, "events": [event]}).encode()
    )


def test_events_are_stored_and_share_the_gateways_seq(
    catalog: Catalog, store: SQLiteStore, dead: DeadLetterStore
) -> None:
    w = writer(catalog, store, dead)
    assert w.process([message(1), event_message(2), message(3)])
    assert w.counters.gaps == 0  # telemetry 1 and 3 with event 2 between: no gap
    [row] = store.query(measurement="events", community="zhuganxiang", device="cam-01", since_ms=TS)
    assert row.fields["phase"] == "start" and json.loads(str(row.fields["attrs"])) == {
        "score": 0.8,
        "zone": "fire-lane",
    }
    assert w.process([event_message(4, device="ghost-7")])
    [letter] = dead.latest()
    assert "events.0.device: unknown device 'ghost-7'" in letter.reason
